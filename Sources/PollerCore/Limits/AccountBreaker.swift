import TaskModel
/// Per-key breaker for account errors (ERROR_KEY_DOES_NOT_EXIST, ERROR_KEY_BANNED,
/// ERROR_ZERO_BALANCE): once a key has one, it is dead for the life of the
/// process. Every in-flight task of that key fails as `account_error`, no call is
/// made with it again, and other keys go on.
public struct AccountBreaker: Hashable, Sendable {
    /// What killed a key, for the failures of its other tasks.
    public struct Trip: Hashable, Sendable {
        public var errorCode: String
        public var errorDescription: String?
        public var at: Timestamp
    }

    public enum Action: Hashable, Sendable {
        /// First account error of `key`: fail all its in-flight tasks with this
        /// code, cancel their polls, and drop its queued work.
        case failAllTasks(of: ClientKey, Trip)
    }

    private var dead: [ClientKey: Trip] = [:]

    public init() {}

    public mutating func reportAccountError(key: ClientKey, errorCode: String, errorDescription: String? = nil, now: Timestamp) -> Action? {
        guard dead[key] == nil else { return nil }
        let trip = Trip(errorCode: errorCode, errorDescription: errorDescription, at: now)
        dead[key] = trip
        return .failAllTasks(of: key, trip)
    }

    /// nil if calls with `key` are allowed; else why not.
    public func trip(for key: ClientKey) -> Trip? { dead[key] }

    public func isDead(_ key: ClientKey) -> Bool { dead[key] != nil }

    public var deadKeyCount: Int { dead.count }
}
