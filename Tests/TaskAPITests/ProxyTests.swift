import Foundation
import Testing
@testable import TaskAPI

/// Egress proxies as fleets deploy them: `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` or
/// `--proxy`, and both transports through a CONNECT proxy on loopback.
@Suite("Egress proxy")
struct ProxyTests {
    private static let answer = #"{"errorId":0,"status":"processing"}"#

    @Test func theEnvironmentPicksAProxyPerSchemeAndNoProxyBypassesIt() throws {
        let environment = ["HTTPS_PROXY": "http://egress:3128", "http_proxy": "plain:8080",
                           "NO_PROXY": "localhost, .internal.example,10.0.0.7, sim:9000 ,[::1]"]
        let proxies = try ProxyConfiguration.resolve(override: nil, environment: environment)
        #expect(proxies.proxy(host: "api.ez-captcha.com", port: 443, https: true) == HTTPProxy(host: "egress", port: 3128))
        #expect(proxies.proxy(host: "api.ez-captcha.com", port: 80, https: false) == HTTPProxy(host: "plain", port: 8080))
        for (host, port) in [("localhost", 443), ("LOCALHOST", 443), ("internal.example", 443), ("a.b.internal.example", 443),
                             ("10.0.0.7", 443), ("sim", 9000), ("::1", 443)] {
            #expect(proxies.proxy(host: host, port: port, https: true) == nil, "\(host):\(port) bypasses the proxy")
        }
        for (host, port) in [("notlocalhost", 443), ("xinternal.example", 443), ("10.0.0.70", 443), ("sim", 9001)] {
            #expect(proxies.proxy(host: host, port: port, https: true) != nil, "\(host):\(port) goes through the proxy")
        }
        #expect(try ProxyConfiguration.resolve(override: nil, environment: ["NO_PROXY": "*", "HTTPS_PROXY": "p:1"])
            .proxy(host: "anything", port: 443, https: true) == nil)
        #expect(try ProxyConfiguration.resolve(override: nil, environment: [:]) == .direct)
    }

    @Test func theFlagWinsOverTheEnvironmentAndNoneTurnsProxiesOff() throws {
        let environment = ["HTTPS_PROXY": "http://egress:3128", "NO_PROXY": "localhost"]
        let flag = try ProxyConfiguration.resolve(override: "http://other:8888", environment: environment)
        #expect(flag.proxy(host: "api.example", port: 443, https: true) == HTTPProxy(host: "other", port: 8888))
        #expect(flag.proxy(host: "api.example", port: 80, https: false) == HTTPProxy(host: "other", port: 8888))
        #expect(flag.proxy(host: "localhost", port: 443, https: true) == nil, "NO_PROXY still applies")
        #expect(try ProxyConfiguration.resolve(override: "none", environment: environment) == .direct)
    }

    @Test func proxyURLsAndTheirSecrets() throws {
        let proxy = try HTTPProxy(url: "http://svc%40corp:p%3Ass@egress.local")
        #expect(proxy.host == "egress.local")
        #expect(proxy.port == 80)
        #expect(proxy.credentials == "svc@corp:p:ss")
        #expect(proxy.authorization == "Basic " + Data("svc@corp:p:ss".utf8).base64EncodedString())
        #expect("\(proxy)" == "egress.local:80", "the description leaves the credentials out")
        for bad in ["https://user:hunter2@egress:443", "socks5://user:hunter2@egress:1080", "http://user:hunter2@"] {
            do {
                _ = try HTTPProxy(url: bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(!"\(error)".contains("hunter2"), "an error names the password: \(error)")
            }
        }
    }

    @Test(arguments: TaskResultClient.Configuration.Transport.allCases)
    func callsGoThroughTheTunnelForHTTPAndHTTPS(transport: TaskResultClient.Configuration.Transport) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-proxy-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let (certificate, tls) = try HTTPSClientTests.serverTLS(in: dir)
        let https = try await LoopbackHTTPServer.start(tls: tls, body: Self.answer)
        let http = try await LoopbackHTTPServer.start(body: Self.answer)
        let proxy = try await LoopbackConnectProxy.start()
        let secret = "proxy-test-key-0123456789abcdef"

        var configuration = TaskResultClient.Configuration(transport: transport)
        configuration.additionalTrustRootFiles = [certificate]
        configuration.proxies = try ProxyConfiguration.resolve(override: "http://127.0.0.1:\(proxy.port)", environment: [:])
        for (url, server) in [("https://localhost:\(https.port)", https), ("http://127.0.0.1:\(http.port)", http)] {
            let client = try TaskResultClient(profile: ProviderProfile.ezCaptcha.with(baseURL: url), configuration: configuration)
            for _ in 0..<2 {
                #expect(await client.getTaskResult(taskId: "t-1", clientKey: ClientKey(secret)) == .processing, "\(url)")
            }
            await client.shutdown()
            #expect(server.requests.withLockedValue { $0 }.count == 2, "\(url): both calls reached the provider")
        }
        let heads = proxy.heads.withLockedValue { $0 }
        #expect(heads.contains { $0.hasPrefix("CONNECT localhost:\(https.port) HTTP/1.1") }, "\(heads)")
        #expect(heads.contains { $0.hasPrefix("CONNECT 127.0.0.1:\(http.port) HTTP/1.1") }, "\(heads)")
        #expect(heads.count == 2, "one tunnel per provider, reused by the second call: \(heads)")
        // Through the https tunnel the proxy saw only TLS; the key crossed it in clear only
        // for the http provider.
        let relayed = String(decoding: proxy.relayed.withLockedValue { $0 }, as: UTF8.self)
        #expect(relayed.components(separatedBy: secret).count - 1 == 2, "the key crossed the proxy only inside the two http calls")

        try await proxy.stop()
        try await https.stop()
        try await http.stop()
    }

    @Test(arguments: TaskResultClient.Configuration.Transport.allCases)
    func proxyCredentialsAreSentAndARefusalIsATransientFailure(transport: TaskResultClient.Configuration.Transport) async throws {
        let server = try await LoopbackHTTPServer.start(body: Self.answer)
        let proxy = try await LoopbackConnectProxy.start(credentials: Data("ezpoll:s3cret-pass".utf8).base64EncodedString())
        let profile = ProviderProfile.ezCaptcha.with(baseURL: "http://127.0.0.1:\(server.port)")

        var configuration = TaskResultClient.Configuration(transport: transport)
        configuration.proxies = try ProxyConfiguration.resolve(
            override: "http://ezpoll:s3cret-pass@127.0.0.1:\(proxy.port)", environment: [:])
        let client = try TaskResultClient(profile: profile, configuration: configuration)
        #expect(await client.getTaskResult(taskId: "t-1", clientKey: ClientKey("key-1234567890")) == .processing)
        await client.shutdown()

        configuration.proxies = try ProxyConfiguration.resolve(
            override: "http://ezpoll:wrong-pass@127.0.0.1:\(proxy.port)", environment: [:])
        let refused = try TaskResultClient(profile: profile, configuration: configuration)
        let outcome = await refused.getTaskResult(taskId: "t-2", clientKey: ClientKey("key-1234567890"))
        await refused.shutdown()
        guard case .failed(.transient(.connection, _), _, let description, _) = outcome else {
            Issue.record("expected a transient connection failure, got \(outcome)")
            return
        }
        #expect(!(description ?? "").contains("wrong-pass"), "the proxy password in an outcome: \(description ?? "")")
        #expect(server.requests.withLockedValue { $0 }.count == 1, "the refused call never reached the provider")
        try await proxy.stop()
        try await server.stop()
    }
}
