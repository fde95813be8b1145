/// Reads HTTP/1.1 responses off one keep-alive connection, one after another, from
/// bytes as they arrive (any split). Pure: no I/O, so every framing case is tested
/// with literal bytes. It keeps only what a getTaskResult answer needs: the status,
/// `Retry-After`, the body and whether the connection may be reused.
///
/// Framing: `Content-Length`, `Transfer-Encoding: chunked` (extensions and trailers
/// skipped) or, with neither, the body runs until the server closes (`finish()`).
/// Interim 1xx answers are skipped.
///
/// Memory and the bytes read are bounded whatever the peer sends: the head, interim 1xx
/// heads before it and trailers count against `maxHeadBytes` per response; the body and
/// its chunk framing (size lines with their extensions, the CRLF after each chunk)
/// against `maxBodyBytes`; consumed bytes are dropped as it goes. So one response never
/// buffers more than the two limits and is refused once it has sent more than their
/// sum. Over either limit, a bare CR or LF in a head, or any other framing error is a
/// `ParseError` at once; after an error the connection must be closed.
struct HTTP1ResponseParser {
    struct Response: Sendable, Equatable {
        var status: Int
        var retryAfter: String?
        var body: [UInt8]
        /// False when the server asked to close, spoke HTTP/1.0 without keep-alive, or
        /// framed the body by closing.
        var keepAlive: Bool
    }

    enum ParseError: Error, Equatable {
        case malformed(String)
        /// More than `maxHeadBytes` of head, interim answers and trailers.
        case headTooLarge
        /// More than `maxBodyBytes` of body and chunk framing.
        case bodyTooLarge
    }

    private enum State {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
    }

    let maxHeadBytes: Int
    let maxBodyBytes: Int
    private var bytes: [UInt8] = []
    private var position = 0
    private var state = State.head
    private var current = Response(status: 0, retryAfter: nil, body: [], keepAlive: true)
    /// Where the search for the end of the head resumes.
    private var scanned = 0
    /// Bytes of the current response's heads and trailers.
    private var framing = 0
    /// Bytes of the current response's chunk framing (size lines, CRLFs after chunks).
    private var chunkFraming = 0

    /// Head, interim answers and trailers of one response, together.
    static let defaultMaxHeadBytes = 16 * 1024

    init(maxHeadBytes: Int = defaultMaxHeadBytes, maxBodyBytes: Int = 1 << 20) {
        self.maxHeadBytes = maxHeadBytes
        self.maxBodyBytes = maxBodyBytes
    }

    /// True between responses with nothing buffered: a close now loses no answer.
    var isIdle: Bool {
        if case .head = state { return position == bytes.count }
        return false
    }

    /// Adds bytes; returns the response they complete, if any. Bytes past the end of a
    /// response are kept for the next call (a server never sends them unasked, but a
    /// pipelining peer could).
    mutating func feed<Bytes: Collection>(_ incoming: Bytes) throws -> Response? where Bytes.Element == UInt8 {
        bytes.append(contentsOf: incoming)
        defer { dropConsumed() }
        return try advance()
    }

    /// The peer closed the connection: completes a body framed by the close.
    mutating func finish() -> Response? {
        guard case .untilClose = state else { return nil }
        current.keepAlive = false
        return complete()
    }

    /// Bytes buffered and not yet consumed: at most about `maxHeadBytes` between calls.
    var buffered: Int { bytes.count - position }

    /// Forgets the bytes already consumed, so only an unfinished head or line stays buffered.
    private mutating func dropConsumed() {
        guard position > 0 else { return }
        if position == bytes.count {
            bytes.removeAll(keepingCapacity: bytes.capacity <= Self.keptCapacity)
        } else {
            bytes.removeFirst(position)
        }
        scanned = max(0, scanned - position)
        position = 0
    }

    /// Capacity kept between reads: one typical read, not the largest the peer sent.
    private static let keptCapacity = 64 * 1024

    /// Counts `count` more bytes of head or trailers against the head limit.
    private mutating func frame(_ count: Int) throws {
        framing += count
        if framing > maxHeadBytes { throw ParseError.headTooLarge }
    }

    /// Counts `count` more bytes of chunk framing, with `next` body bytes still to come,
    /// against the body limit.
    private mutating func frameChunk(_ count: Int, next: Int = 0) throws {
        chunkFraming += count
        if current.body.count + chunkFraming + next > maxBodyBytes { throw ParseError.bodyTooLarge }
    }

    /// A line (chunk size or trailer) is still incomplete: it may not outgrow the limits.
    private func waitForLine() throws -> Response? {
        if buffered > Self.maxLineBytes { throw ParseError.malformed("line too long") }
        if case .chunkSize = state {
            if current.body.count + chunkFraming + buffered > maxBodyBytes { throw ParseError.bodyTooLarge }
        } else if framing + buffered > maxHeadBytes {
            throw ParseError.headTooLarge
        }
        return nil
    }

    private static let maxLineBytes = 1024

    private mutating func advance() throws -> Response? {
        while true {
            switch state {
            case .head:
                guard let end = try headEnd() else {
                    if framing + buffered > maxHeadBytes { throw ParseError.headTooLarge }
                    return nil
                }
                try frame(end + 4 - position)
                let interim = try parseHead(bytes[position..<end])
                position = end + 4
                scanned = position
                if interim { continue }
            case .fixedBody(let remaining):
                let missing = takeBody(remaining)
                if missing > 0 {
                    state = .fixedBody(remaining: missing)
                    return nil
                }
                return complete()
            case .chunkSize:
                guard let lineEnd = crlf(from: position) else { return try waitForLine() }
                let size = try Self.chunkSize(bytes[position..<lineEnd])
                try frameChunk(lineEnd + 2 - position, next: size)
                position = lineEnd + 2
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                let missing = takeBody(remaining)
                if missing > 0 {
                    state = .chunkData(remaining: missing)
                    return nil
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard bytes.count - position >= 2 else { return nil }
                guard bytes[position] == 13, bytes[position + 1] == 10 else { throw ParseError.malformed("chunk not followed by CRLF") }
                try frameChunk(2)
                position += 2
                state = .chunkSize
            case .trailers:
                guard let lineEnd = crlf(from: position) else { return try waitForLine() }
                let empty = lineEnd == position
                try frame(lineEnd + 2 - position)
                position = lineEnd + 2
                if empty { return complete() }
            case .untilClose:
                guard current.body.count + buffered <= maxBodyBytes else { throw ParseError.bodyTooLarge }
                _ = takeBody(buffered)
                return nil
            }
        }
    }

    /// Moves up to `remaining` buffered bytes into the body; returns how many are still missing.
    private mutating func takeBody(_ remaining: Int) -> Int {
        let take = min(remaining, bytes.count - position)
        current.body.append(contentsOf: bytes[position..<(position + take)])
        position += take
        return remaining - take
    }

    private mutating func complete() -> Response {
        let response = current
        current = Response(status: 0, retryAfter: nil, body: [], keepAlive: true)
        state = .head
        framing = 0
        chunkFraming = 0
        scanned = position
        return response
    }

    /// Index of the CRLF CRLF that ends the head, searching only new bytes. A bare LF
    /// fails at once: a head that ends in LF LF would otherwise wait for more bytes.
    private mutating func headEnd() throws -> Int? {
        var index = max(position, scanned - 3)
        while index + 3 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10, bytes[index + 2] == 13, bytes[index + 3] == 10 { return index }
            if bytes[index] == 10, index == position || bytes[index - 1] != 13 {
                throw ParseError.malformed("bare CR or LF in head")
            }
            index += 1
        }
        scanned = max(position, bytes.count - 3)
        return nil
    }

    private func crlf(from start: Int) -> Int? {
        var index = start
        while index + 1 < bytes.count {
            if bytes[index] == 13, bytes[index + 1] == 10 { return index }
            index += 1
        }
        return nil
    }

    /// Parses a status line and headers; true for an interim (1xx) answer to skip.
    private mutating func parseHead(_ head: ArraySlice<UInt8>) throws -> Bool {
        var lines = try Self.lines(head)
        guard let statusLine = lines.first else { throw ParseError.malformed("empty head") }
        lines.removeFirst()
        // "HTTP/1.1 200 OK"
        guard statusLine.count >= 12, statusLine.starts(with: Self.httpSlash),
              statusLine[statusLine.startIndex + 8] == 32 else { throw ParseError.malformed("bad status line") }
        let minor = statusLine[statusLine.startIndex + 7]
        var status = 0
        for byte in statusLine[(statusLine.startIndex + 9)..<(statusLine.startIndex + 12)] {
            guard byte >= 48, byte <= 57 else { throw ParseError.malformed("bad status code") }
            status = status * 10 + Int(byte - 48)
        }
        var keepAlive = minor != 48 // HTTP/1.0 closes unless it says keep-alive
        var contentLength: Int?
        var chunked = false
        var retryAfter: String?
        for line in lines {
            guard let colon = line.firstIndex(of: 58) else { throw ParseError.malformed("header without a colon") }
            let name = line[line.startIndex..<colon]
            let value = Self.trimmed(line[(colon + 1)...])
            if Self.equalsIgnoringCase(name, "content-length") {
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    throw ParseError.malformed("bad Content-Length")
                }
                let length = value.reduce(0) { $0 * 10 + Int($1 - 48) }
                if let contentLength, contentLength != length { throw ParseError.malformed("conflicting Content-Length") }
                contentLength = length
            } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                chunked = Self.containsIgnoringCase(value, "chunked")
            } else if Self.equalsIgnoringCase(name, "connection") {
                if Self.containsIgnoringCase(value, "close") { keepAlive = false }
                if Self.containsIgnoringCase(value, "keep-alive") { keepAlive = true }
            } else if Self.equalsIgnoringCase(name, "retry-after") {
                retryAfter = String(decoding: value, as: UTF8.self)
            }
        }
        if status >= 100 && status < 200 && status != 101 { return true }
        current = Response(status: status, retryAfter: retryAfter, body: [], keepAlive: keepAlive)
        if status == 204 || status == 304 || status == 101 {
            state = .fixedBody(remaining: 0)
        } else if chunked {
            state = .chunkSize
        } else if let contentLength {
            guard contentLength <= maxBodyBytes else { throw ParseError.bodyTooLarge }
            current.body.reserveCapacity(contentLength)
            state = .fixedBody(remaining: contentLength)
        } else {
            current.keepAlive = false
            state = .untilClose
        }
        return false
    }

    private static let httpSlash: [UInt8] = Array("HTTP/1.".utf8)

    /// The head's lines, split at CRLF. A CR or LF alone is an error: parsers that
    /// accept a bare LF as a line end would read this head differently from us.
    private static func lines(_ head: ArraySlice<UInt8>) throws -> [ArraySlice<UInt8>] {
        var lines: [ArraySlice<UInt8>] = []
        var start = head.startIndex
        var index = head.startIndex
        while index < head.endIndex {
            if head[index] == 13, index + 1 < head.endIndex, head[index + 1] == 10 {
                lines.append(head[start..<index])
                index += 2
                start = index
            } else if head[index] == 13 || head[index] == 10 {
                throw ParseError.malformed("bare CR or LF in head")
            } else {
                index += 1
            }
        }
        lines.append(head[start..<head.endIndex])
        return lines
    }

    private static func trimmed(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var value = value
        while let first = value.first, first == 32 || first == 9 { value.removeFirst() }
        while let last = value.last, last == 32 || last == 9 { value.removeLast() }
        return value
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= 65 && byte <= 90 ? byte + 32 : byte
    }

    private static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        return lower.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { lowercased($0) == $1 }
        }
    }

    private static func containsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ lower: StaticString) -> Bool {
        lower.withUTF8Buffer { needle in
            guard bytes.count >= needle.count else { return false }
            var start = bytes.startIndex
            while start + needle.count <= bytes.endIndex {
                if zip(bytes[start..<(start + needle.count)], needle).allSatisfy({ lowercased($0) == $1 }) { return true }
                start += 1
            }
            return false
        }
    }

    /// A chunk-size line: hex digits, optionally followed by `;extensions`.
    private static func chunkSize(_ line: ArraySlice<UInt8>) throws -> Int {
        var size = 0
        var digits = 0
        for byte in line {
            let value: Int
            switch byte {
            case 48...57: value = Int(byte - 48)
            case 97...102: value = Int(byte - 87)
            case 65...70: value = Int(byte - 55)
            case 59, 32, 9: // ';' extensions, or whitespace before them
                guard digits > 0 else { throw ParseError.malformed("bad chunk size") }
                return size
            default: throw ParseError.malformed("bad chunk size")
            }
            digits += 1
            guard digits <= 15 else { throw ParseError.malformed("chunk too large") }
            size = size * 16 + value
        }
        guard digits > 0 else { throw ParseError.malformed("bad chunk size") }
        return size
    }
}
