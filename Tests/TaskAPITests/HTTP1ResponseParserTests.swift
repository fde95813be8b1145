import Testing
@testable import TaskAPI

@Suite("HTTP/1.1 response framing")
struct HTTP1ResponseParserTests {
    private typealias Parser = HTTP1ResponseParser
    private typealias Response = HTTP1ResponseParser.Response

    private static let body = #"{"errorId":0,"status":"processing"}"#
    private static let fixed = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
    private static let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n"
        + "5;ext=1\r\n{\"err\r\n1E\r\norId\":0,\"status\":\"processing\"}\r\n0\r\nX-Trailer: t\r\n\r\n"

    /// Feeds `text` cut at every byte position (and whole); every cut gives the same answers.
    private func responses(_ text: String, parser make: () -> Parser = { Parser() }) throws -> [[Response]] {
        let bytes = Array(text.utf8)
        var all: [[Response]] = []
        for cut in 0...bytes.count {
            var parser = make()
            var got: [Response] = []
            if let r = try parser.feed(bytes[0..<cut]) { got.append(r) }
            if let r = try parser.feed(bytes[cut...]) { got.append(r) }
            while let r = try parser.feed([UInt8]()) { got.append(r) }
            all.append(got)
        }
        return all
    }

    @Test func contentLengthAtEveryCut() throws {
        let expected = Response(status: 200, retryAfter: nil, body: Array(Self.body.utf8), keepAlive: true)
        for got in try responses(Self.fixed) { #expect(got == [expected]) }
    }

    @Test func chunkedWithExtensionsAndTrailersAtEveryCut() throws {
        let expected = Response(status: 200, retryAfter: nil, body: Array(Self.body.utf8), keepAlive: true)
        for got in try responses(Self.chunked) { #expect(got == [expected]) }
    }

    @Test func backToBackResponsesOnOneConnection() throws {
        let second = "HTTP/1.1 429 Too Many\r\nRETRY-AFTER:  7 \r\ncontent-length: 0\r\n\r\n"
        for got in try responses(Self.fixed + Self.chunked + second) {
            #expect(got.map(\.status) == [200, 200, 429])
            #expect(got.last?.retryAfter == "7")
            #expect(got.last?.body == [])
        }
    }

    @Test func keepAliveRules() throws {
        var parser = Parser()
        #expect(try parser.feed(Array("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8))?.keepAlive == false)
        #expect(try parser.feed(Array("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n".utf8))?.keepAlive == false)
        #expect(try parser.feed(Array("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n".utf8))?.keepAlive == true)
        #expect(parser.isIdle)
    }

    @Test func bodyFramedByTheClose() throws {
        var parser = Parser()
        #expect(try parser.feed(Array("HTTP/1.1 200 OK\r\n\r\n{\"a\"".utf8)) == nil)
        #expect(try parser.feed(Array(":1}".utf8)) == nil)
        #expect(!parser.isIdle)
        #expect(parser.finish() == Response(status: 200, retryAfter: nil, body: Array(#"{"a":1}"#.utf8), keepAlive: false))
    }

    @Test func interimAndEmptyAnswers() throws {
        var parser = Parser()
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\r\nno"
        var got: [Response] = []
        if let r = try parser.feed(Array(text.utf8)) { got.append(r) }
        while let r = try parser.feed([UInt8]()) { got.append(r) }
        #expect(got.map(\.status) == [204, 503])
        #expect(got.last?.body == Array("no".utf8))
    }

    @Test func malformedAndOversizedAnswersAreErrors() {
        let cases: [(String, Parser.ParseError)] = [
            ("HTTQ/1.1 200 OK\r\n\r\n", .malformed("bad status line")),
            ("HTTP/1.1 2x0 OK\r\n\r\n", .malformed("bad status code")),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", .malformed("header without a colon")),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .malformed("bad Content-Length")),
            ("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", .malformed("conflicting Content-Length")),
            ("HTTP/1.1 200 OK\r\nContent-Length: 65\r\n\r\n", .bodyTooLarge),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .malformed("bad chunk size")),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n", .bodyTooLarge),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", .malformed("chunk not followed by CRLF")),
            ("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 200) + "\r\n\r\n", .headTooLarge),
            ("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 200), .headTooLarge),
        ]
        for (text, expected) in cases {
            var parser = Parser(maxHeadBytes: 128, maxBodyBytes: 64)
            #expect(throws: expected, "\(text.prefix(60))") { _ = try parser.feed(Array(text.utf8)) }
        }
    }
}
