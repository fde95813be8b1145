/// The global pause after ERROR_IP_BANNED: no call at all, for any key, until the ban ends.
public struct BanPause: Hashable, Sendable {
    public var banDuration: Duration
    public private(set) var pausedUntil: Timestamp?

    public enum Action: Hashable, Sendable {
        /// Stop every call until this time (a new ban extends an ongoing one).
        case pauseAll(until: Timestamp)
    }

    public init(banDuration: Duration) {
        self.banDuration = banDuration
    }

    /// A call was answered ERROR_IP_BANNED. Returns the pause to apply if it moved.
    public mutating func reportBan(now: Timestamp) -> Action? {
        let until = now + banDuration
        if let pausedUntil, pausedUntil >= until { return nil }
        pausedUntil = until
        return .pauseAll(until: until)
    }

    /// nil when calls are allowed; else when they will be.
    public mutating func pausedUntil(now: Timestamp) -> Timestamp? {
        guard let until = pausedUntil else { return nil }
        if now >= until {
            pausedUntil = nil
            return nil
        }
        return until
    }
}
