import PropertyBased
import Testing
@testable import TaskAPI

/// The hand-written parser against what a hostile peer can send: one test per
/// misbehaviour (each fails within the head and body limits, buffering no more than
/// them), and random inputs (any split of valid answers gives the same answers; random
/// bytes never crash it and never make it buffer past its head limit).
@Suite("HTTP/1.1 response framing under hostile input")
struct HTTP1ResponseParserPropertyTests {
    private typealias Parser = HTTP1ResponseParser
    private static let maxHead = 1024
    private static let maxBody = 4096

    /// Feeds `head` and then `unit` over and over in 512-byte reads until the parser
    /// throws; returns the error and how many bytes it took. Checks the buffering bound
    /// after every read.
    private func flood(_ head: String, _ unit: String, limit: Int = 1 << 20) -> (error: Parser.ParseError?, fed: Int) {
        var parser = Parser(maxHeadBytes: Self.maxHead, maxBodyBytes: Self.maxBody)
        var stream = Array(head.utf8)
        let unit = Array(unit.utf8)
        var fed = 0
        while fed < limit {
            while stream.count < 512 { stream += unit }
            let read = stream.prefix(512)
            stream.removeFirst(512)
            fed += read.count
            do {
                while try parser.feed(read) != nil {}
            } catch let error as Parser.ParseError {
                return (error, fed)
            } catch {
                return (nil, fed)
            }
            if parser.buffered > Self.maxHead { Issue.record("buffered \(parser.buffered) bytes after \(fed)") }
        }
        return (nil, fed)
    }

    @Test func everyFloodFailsWithinTheLimits() {
        let cases: [(String, String, String, Parser.ParseError)] = [
            ("1xx flood", "", "HTTP/1.1 100 Continue\r\n\r\n", .headTooLarge),
            ("trailer flood", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n", "X-T: tttttttttt\r\n", .headTooLarge),
            ("endless header lines", "HTTP/1.1 200 OK\r\n", "X-H: hhhhhhhhhh\r\n", .headTooLarge),
            ("chunk extensions", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1;e=" + String(repeating: "e", count: 200) + "\r\n{\r\n", .bodyTooLarge),
            ("one-byte chunks", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "1\r\n{\r\n", .bodyTooLarge),
            ("an endless chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "100\r\n" + String(repeating: "b", count: 256) + "\r\n", .bodyTooLarge),
            ("an endless close-framed body", "HTTP/1.1 200 OK\r\n\r\n", "bbbbbbbb", .bodyTooLarge),
        ]
        for (name, head, unit, expected) in cases {
            let (error, fed) = flood(head, unit)
            #expect(error == expected, "\(name): \(String(describing: error))")
            #expect(fed <= Self.maxHead + Self.maxBody + 512, "\(name): read \(fed) bytes before refusing")
        }
    }

    @Test func brokenAnswersFailOnTheirFirstRead() {
        let cases: [(String, String, Parser.ParseError)] = [
            ("bare LF head", "HTTP/1.1 200 OK\nContent-Length: 2\n\n{}", .malformed("bare CR or LF in head")),
            ("bare LF in a header", "HTTP/1.1 200 OK\r\nX: a\nb\r\nContent-Length: 2\r\n\r\n{}", .malformed("bare CR or LF in head")),
            ("bare CR in a header", "HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\n{}", .malformed("bare CR or LF in head")),
            ("absurd chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n", .bodyTooLarge),
            ("chunk size past 60 bits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .malformed("chunk too large")),
            ("huge Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n", .bodyTooLarge),
            ("oversized head", "HTTP/1.1 200 OK\r\nX-Big: " + String(repeating: "b", count: 2000) + "\r\n\r\n", .headTooLarge),
        ]
        for (name, text, expected) in cases {
            var parser = Parser(maxHeadBytes: Self.maxHead, maxBodyBytes: Self.maxBody)
            #expect(throws: expected, "\(name)") { _ = try parser.feed(Array(text.utf8)) }
        }
    }

    @Test func interimAnswersAndTrailersWithinTheLimitStillWork() throws {
        var parser = Parser(maxHeadBytes: Self.maxHead, maxBodyBytes: Self.maxBody)
        let text = String(repeating: "HTTP/1.1 100 Continue\r\n\r\n", count: 10)
            + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=b\r\n{}\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n"
        let response = try parser.feed(Array(text.utf8))
        #expect(response?.status == 200)
        #expect(response?.body == Array("{}".utf8))
        #expect(parser.isIdle)
    }

    /// A response framed one of three ways (with chunk extensions and trailers when chunked).
    private static func framed(_ body: [UInt8], way: Int, chunk: Int) -> [UInt8] {
        switch way {
        case 0:
            return Array("HTTP/1.1 200 OK\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body
        case 1:
            var out = Array("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
            var rest = body[...]
            while !rest.isEmpty {
                let piece = rest.prefix(chunk)
                rest = rest.dropFirst(piece.count)
                out += Array("\(String(piece.count, radix: 16));x=y\r\n".utf8) + piece + [13, 10]
            }
            return out + Array("0\r\nX-Trailer: t\r\n\r\n".utf8)
        default:
            return Array("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".utf8) + body
        }
    }

    @Test func anySplitOfValidAnswersGivesTheSameAnswers() async {
        await propertyCheck(count: 300, input: Gen.uint8(in: 0...255).array(of: 0...600), Gen.int(in: 0...2),
                            Gen.int(in: 1...80), Gen.int(in: 1...97)) { body, way, chunk, read in
            // Room for one-byte chunks: their framing counts against the body limit.
            var parser = Parser(maxHeadBytes: Self.maxHead, maxBodyBytes: 1 << 16)
            // Two answers back to back when the framing allows it, the second one small.
            var stream = Self.framed(body, way: way, chunk: chunk)
            if way != 2 { stream += Self.framed(Array("{}".utf8), way: 0, chunk: 1) }
            var got: [Parser.Response] = []
            var index = 0
            do {
                while index < stream.count {
                    let end = min(stream.count, index + read)
                    if let response = try parser.feed(stream[index..<end]) { got.append(response) }
                    while let response = try parser.feed([UInt8]()) { got.append(response) }
                    index = end
                    #expect(parser.buffered <= Self.maxHead)
                }
            } catch {
                Issue.record("a valid answer was refused: \(error)")
                return
            }
            if way == 2, let last = parser.finish() { got.append(last) }
            #expect(got.first?.body == body)
            #expect(got.count == (way == 2 ? 1 : 2))
            #expect(got.last?.body == (way == 2 ? body : Array("{}".utf8)))
        }
    }

    @Test func randomBytesNeverCrashOrOverBuffer() async {
        let starts = ["", "HTTP/1.1 200 OK\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"]
        // Bytes biased towards the ones that matter to framing (CR, LF, ':', ';', hex digits).
        let byte = Gen.oneOf(Gen.uint8(in: 0...255), Gen.element(of: Array("\r\n:;0123456789abcdefHTTP/1. ".utf8)).map { $0 ?? 0 })
        await propertyCheck(count: 500, input: Gen.int(in: 0...3), byte.array(of: 0...3000), Gen.int(in: 1...700)) { start, bytes, read in
            var parser = Parser(maxHeadBytes: Self.maxHead, maxBodyBytes: Self.maxBody)
            let stream = Array(starts[start].utf8) + bytes
            var index = 0
            while index < stream.count {
                let end = min(stream.count, index + read)
                do {
                    if let response = try parser.feed(stream[index..<end]) {
                        #expect(response.body.count <= Self.maxBody)
                    }
                    while let response = try parser.feed([UInt8]()) { #expect(response.body.count <= Self.maxBody) }
                } catch {
                    return // refused: the connection would close here
                }
                #expect(parser.buffered <= Self.maxHead, "buffered \(parser.buffered) after \(end) bytes")
                index = end
            }
            _ = parser.finish()
        }
    }
}
