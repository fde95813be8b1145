/// The one JSON writer: one object straight into bytes, no Codable, no
/// intermediate tree. Request bodies, simulator answers and the output messages
/// use it. Strings go through `JSONEscaping` (RFC 8259: quote, backslash, every
/// control character).
public struct JSONWriter {
    public var bytes: [UInt8] = []
    private var needsComma = [false]

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    public mutating func key(_ name: StaticString) {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    public mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        appendString(value)
    }

    public mutating func optionalString(_ name: StaticString, _ value: String?) {
        if let value { string(name, value) }
    }

    public mutating func integer<I: BinaryInteger>(_ name: StaticString, _ value: I) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    public mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    public mutating func null(_ name: StaticString) {
        key(name)
        bytes.append(contentsOf: "null".utf8)
    }

    /// Splices already valid JSON text verbatim.
    public mutating func raw(_ name: StaticString, _ value: RawJSON) {
        key(name)
        bytes.append(contentsOf: value.bytes)
    }

    public mutating func beginObject(_ name: StaticString) {
        key(name)
        bytes.append(UInt8(ascii: "{"))
        needsComma.append(false)
    }

    public mutating func endObject() {
        needsComma.removeLast()
        bytes.append(UInt8(ascii: "}"))
    }

    /// Closes the top-level object and returns the bytes.
    public mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    public mutating func appendString(_ value: String) {
        JSONEscaping.appendString(value, to: &bytes)
    }

    /// Writes valid UTF-8 bytes as a JSON string.
    public mutating func appendStringBytes(_ b: UnsafeRawBufferPointer) {
        JSONEscaping.appendString(utf8: b, to: &bytes)
    }
}
