import Crypto

/// A provider account key (`clientKey`). The secret is only reachable through
/// `secret`, which the request encoder uses; every textual form of the value
/// (`description`, `debugDescription`, `dump`, `Mirror`, string interpolation)
/// shows only a short fingerprint: `ClientKey(fp:1a2b3c4d)`.
public struct ClientKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The raw key. Do not log, print or publish it.
    public let secret: String
    /// First 8 hex digits of the SHA-256 of the key: safe to log, stable across runs.
    public let fingerprint: String

    public init(_ secret: String) {
        self.secret = secret
        self.fingerprint = ClientKey.fingerprint(of: secret)
    }

    /// The fingerprint of `secret` (first 8 lowercase hex digits of SHA-256).
    public static func fingerprint(of secret: String) -> String {
        let digest = SHA256.hash(data: Array(secret.utf8))
        var hex = ""
        for byte in digest.prefix(4) {
            hex += byte < 16 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
        }
        return hex
    }

    public var description: String { "ClientKey(fp:\(fingerprint))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: ["fingerprint": fingerprint], displayStyle: .struct)
    }

    // Hash and compare by secret, without exposing it through synthesized code paths.
    public static func == (lhs: ClientKey, rhs: ClientKey) -> Bool { lhs.secret == rhs.secret }
    public func hash(into hasher: inout Hasher) { hasher.combine(secret) }
}
