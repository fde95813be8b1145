import Foundation

/// Which egress proxy, if any, carries the calls to a provider, as fleets deploy it:
/// `HTTPS_PROXY` for https providers, `HTTP_PROXY` for http ones (either case of the
/// names), hosts in `NO_PROXY` reached directly, or one proxy for all (`--proxy`).
/// Both transports tunnel through the proxy with HTTP `CONNECT`, so the proxy sees the
/// provider's host and port and, for https, nothing of the requests (or the key).
public struct ProxyConfiguration: Sendable, Hashable {
    /// For https providers.
    public var https: HTTPProxy?
    /// For http providers.
    public var http: HTTPProxy?
    /// Hosts reached directly (`NO_PROXY` rules, lowercased): a name matches itself and
    /// its subdomains (a leading dot is ignored), `host:port` only that port, `*` every host.
    public var noProxy: [String]

    /// No proxy at all.
    public static let direct = ProxyConfiguration(https: nil, http: nil, noProxy: [])

    public init(https: HTTPProxy?, http: HTTPProxy?, noProxy: [String]) {
        self.https = https
        self.http = http
        self.noProxy = noProxy
    }

    /// From `override` (a proxy URL for every provider, or `none` for no proxy at all)
    /// or else the environment's `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (upper case
    /// first, then lower case). Throws on a proxy URL it cannot use.
    public static func resolve(override: String?, environment: [String: String]) throws -> ProxyConfiguration {
        func variable(_ name: String) -> String? {
            let value = environment[name] ?? environment[name.lowercased()]
            return value?.trimmingCharacters(in: .whitespaces).isEmpty == false ? value : nil
        }
        let noProxy = (variable("NO_PROXY") ?? "").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        if let override {
            if override.lowercased() == "none" { return .direct }
            let proxy = try HTTPProxy(url: override)
            return ProxyConfiguration(https: proxy, http: proxy, noProxy: noProxy)
        }
        return ProxyConfiguration(https: try variable("HTTPS_PROXY").map { try HTTPProxy(url: $0) },
                                  http: try variable("HTTP_PROXY").map { try HTTPProxy(url: $0) },
                                  noProxy: noProxy)
    }

    /// The proxy for a provider at `host:port`, nil for a direct connection.
    public func proxy(host: String, port: Int, https isHTTPS: Bool) -> HTTPProxy? {
        guard let proxy = isHTTPS ? https : http else { return nil }
        return bypasses(host: host, port: port) ? nil : proxy
    }

    func bypasses(host: String, port: Int) -> Bool {
        let host = host.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        for rule in noProxy {
            if rule == "*" { return true }
            var name = Substring(rule)
            // "host:port" (not an IPv6 literal, which has several colons)
            if let colon = name.lastIndex(of: ":"), name.filter({ $0 == ":" }).count == 1 {
                guard Int(name[name.index(after: colon)...]) == port else { continue }
                name = name[..<colon]
            }
            name = name.drop { $0 == "." || $0 == "*" }
            name = Substring(name.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
            guard !name.isEmpty else { continue }
            if host == name || host.hasSuffix("." + name) { return true }
        }
        return false
    }
}

/// One HTTP proxy: where it listens and, from the URL's user info, the credentials for
/// `Proxy-Authorization: Basic`. The credentials are a secret: `description` leaves them out.
public struct HTTPProxy: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `user:password`, percent-decoded; nil without credentials.
    public var credentials: String?

    public init(host: String, port: Int, credentials: String? = nil) {
        self.host = host
        self.port = port
        self.credentials = credentials
    }

    /// `http://[user:password@]host[:port]` (port 80 by default); a bare `host:port` is
    /// read as http. Only http proxies: a TLS connection to the proxy itself is not supported.
    public init(url text: String) throws {
        let withScheme = text.contains("://") ? text : "http://" + text
        guard let url = URLComponents(string: withScheme), let host = url.host, !host.isEmpty else {
            throw ProxyError("proxy '\(HTTPProxy.redacted(text))' is not a URL")
        }
        guard url.scheme?.lowercased() == "http" else {
            throw ProxyError("proxy '\(HTTPProxy.redacted(text))': only http:// proxies are supported (HTTP CONNECT)")
        }
        self.host = host
        port = url.port ?? 80
        if let user = url.percentEncodedUser {
            let password = url.percentEncodedPassword ?? ""
            credentials = (user.removingPercentEncoding ?? user) + ":" + (password.removingPercentEncoding ?? password)
        }
    }

    /// `Basic ...` for `Proxy-Authorization`, nil without credentials.
    var authorization: String? {
        credentials.map { "Basic " + Data($0.utf8).base64EncodedString() }
    }

    /// `host:port`, never the credentials.
    public var description: String { "\(host):\(port)" }

    /// A proxy URL with its user info removed, for error messages.
    static func redacted(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return text }
        let start = text.range(of: "://")?.upperBound ?? text.startIndex
        return String(text[..<start]) + "***@" + String(text[text.index(after: at)...])
    }
}

public struct ProxyError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
