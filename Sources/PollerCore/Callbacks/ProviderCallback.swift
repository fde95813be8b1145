import TaskModel

/// One provider callback request, read with no I/O: which provider it names (its path),
/// whether it carries the shared token, and which task it is about.
///
/// Paths: `/callbacks/<provider>` or, with a token configured, `/callbacks/<provider>/<token>`
/// (the provider's name as `ezpoll run` knows it, any case). Bodies, tolerantly:
///
/// | sender | body |
/// |---|---|
/// | Anti-Captcha, CapMonster, CapSolver, ez-captcha | JSON object with `taskId` (string or integer), usually the getTaskResult answer |
/// | 2captcha pingback | form-encoded `id=…&code=…` (or the same in the query) |
///
/// Only the task id is used: whatever else the body says (a solution, a status) is not
/// trusted, because callbacks are unauthenticated; the verification poll tells.
public struct ProviderCallback: Hashable, Sendable {
    /// Callback paths start with this.
    public static let pathPrefix = "/callbacks/"
    /// Longest task id taken from a callback (as `TaskEventDecoder.maxFieldBytes`' default).
    public static let maxTaskIdBytes = 1024

    public var provider: String
    public var taskId: String

    public enum Rejection: String, Error, Sendable, CaseIterable {
        /// Not a callback path (HTTP 404).
        case notFound = "not_found"
        /// Not POST (or GET with the id in the query) (HTTP 405).
        case methodNotAllowed = "method_not_allowed"
        /// The token in the path is missing or wrong (HTTP 403).
        case forbidden
        /// The body is larger than the receiver takes (HTTP 413).
        case tooLarge = "too_large"
        /// No task id found in the body or query (HTTP 400).
        case malformed
    }

    public init(provider: String, taskId: String) {
        self.provider = provider
        self.taskId = taskId
    }

    /// Reads a request. `token`: the shared secret every path must end with, if any;
    /// compared in constant time.
    public static func parse(method: String, uri: String, body: [UInt8], token: String?) -> Result<ProviderCallback, Rejection> {
        let (path, query) = split(uri)
        guard path.hasPrefix(pathPrefix) else { return .failure(.notFound) }
        let segments = path.dropFirst(pathPrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let provider = segments.first, !provider.isEmpty, segments.count <= 2 else { return .failure(.notFound) }
        if let token {
            guard segments.count == 2, constantTimeEquals(Array(segments[1].utf8), Array(token.utf8)) else { return .failure(.forbidden) }
        } else if segments.count == 2 {
            return .failure(.notFound)
        }
        guard method == "POST" || method == "GET" else { return .failure(.methodNotAllowed) }
        guard let taskId = taskId(body: method == "POST" ? body : [], query: query) else { return .failure(.malformed) }
        return .success(ProviderCallback(provider: String(provider), taskId: taskId))
    }

    /// The task id of a JSON body (`taskId`, else `id`), a form-encoded body, or the query.
    static func taskId(body: [UInt8], query: Substring?) -> String? {
        let first = body.first { $0 != 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        if first == UInt8(ascii: "{") { return jsonTaskId(body) }
        if !body.isEmpty, let id = formTaskId(Substring(decoding: body, as: UTF8.self)) { return id }
        return query.flatMap(formTaskId)
    }

    private static func jsonTaskId(_ body: [UInt8]) -> String? {
        guard let members = try? JSONScanner.members(ofObject: body, maxDepth: 16) else { return nil }
        for name in ["taskId", "id"] {
            guard let member = members.first(where: { $0.key == name }) else { continue }
            switch member.kind {
            case .string:
                guard let text = try? JSONScanner.decodeString(body, member.range) else { return nil }
                return valid(text)
            case .number:
                return body[member.range].withUnsafeBytes { TaskEventDecoder.integerDigits($0, maxLength: maxTaskIdBytes) }
            default:
                return nil
            }
        }
        return nil
    }

    private static func formTaskId(_ form: Substring) -> String? {
        var found: [String: String] = [:]
        for pair in form.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "taskId" || parts[0] == "id" else { continue }
            found[String(parts[0])] = percentDecoded(parts[1])
        }
        return (found["taskId"] ?? found["id"]).flatMap(valid)
    }

    private static func valid(_ text: String) -> String? {
        text.utf8.count <= maxTaskIdBytes && text.contains(where: { !$0.isWhitespace }) ? text : nil
    }

    private static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        guard let mark = uri.firstIndex(of: "?") else { return (Substring(uri), nil) }
        return (uri[..<mark], uri[uri.index(after: mark)...])
    }

    /// `%XX` and `+` decoded; nil for a broken escape or bytes that are not UTF-8.
    static func percentDecoded(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(0x20)
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            default: bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// Equal bytes, in time that depends only on the lengths.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) {
            difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
        }
        return difference == 0
    }
}
