import TaskModel
/// Writes one JSON object straight into bytes: no Codable, no intermediate tree.
/// Strings are escaped per RFC 8259 (quote, backslash, every control character);
/// Swift `String`s are always valid UTF-8, and byte input is repaired with U+FFFD.
struct JSONWriter {
    var bytes: [UInt8] = []
    private var needsComma = [false]

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
        bytes.append(UInt8(ascii: "{"))
    }

    mutating func key(_ name: StaticString) {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    mutating func string(_ name: StaticString, _ value: String) {
        key(name)
        appendString(value)
    }

    mutating func optionalString(_ name: StaticString, _ value: String?) {
        if let value { string(name, value) }
    }

    mutating func integer<I: BinaryInteger>(_ name: StaticString, _ value: I) {
        key(name)
        bytes.append(contentsOf: String(value).utf8)
    }

    mutating func bool(_ name: StaticString, _ value: Bool) {
        key(name)
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    mutating func null(_ name: StaticString) {
        key(name)
        bytes.append(contentsOf: "null".utf8)
    }

    mutating func timestamp(_ name: StaticString, _ value: Timestamp) {
        key(name)
        bytes.append(UInt8(ascii: "\""))
        value.appendRFC3339(to: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }

    /// Splices already valid JSON text verbatim.
    mutating func raw(_ name: StaticString, _ value: RawJSON) {
        key(name)
        bytes.append(contentsOf: value.bytes)
    }

    mutating func beginObject(_ name: StaticString) {
        key(name)
        bytes.append(UInt8(ascii: "{"))
        needsComma.append(false)
    }

    mutating func endObject() {
        needsComma.removeLast()
        bytes.append(UInt8(ascii: "}"))
    }

    /// Closes the top-level object and returns the bytes.
    mutating func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }

    mutating func appendString(_ value: String) {
        JSONEscaping.appendString(value, to: &bytes)
    }

    /// Writes valid UTF-8 bytes as a JSON string.
    mutating func appendStringBytes(_ b: UnsafeRawBufferPointer) {
        JSONEscaping.appendString(utf8: b, to: &bytes)
    }
}
