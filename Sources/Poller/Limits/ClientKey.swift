/// A provider account key. Its `description` never shows the key, so it is safe
/// to interpolate into logs and errors; the raw value is only for the HTTP body.
public struct ClientKey: Hashable, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// A short non-reversible tag to tell keys apart in logs (FNV-1a, 32 bits).
    public var fingerprint: String {
        var hash: UInt32 = 0x811C_9DC5
        for byte in rawValue.utf8 {
            hash ^= UInt32(byte)
            hash &*= 0x0100_0193
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    public var description: String { "ClientKey(redacted, fp=\(fingerprint))" }
    public var debugDescription: String { description }
}
