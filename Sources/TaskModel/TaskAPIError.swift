/// The one error type of `TaskAPI`. `code` is stable and meant for matching
/// and metrics; `message` is for humans and never contains a client key.
public struct TaskAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Stable error codes.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Bytes are not valid JSON (or truncated).
        public static let malformedJSON = Code("TASKAPI_MALFORMED_JSON")
        /// Valid JSON, but not the shape of a provider response.
        public static let unexpectedShape = Code("TASKAPI_UNEXPECTED_SHAPE")
        /// A base URL that cannot be used.
        public static let invalidURL = Code("TASKAPI_INVALID_URL")
        /// TLS settings that cannot be used (an unreadable or invalid trust root file).
        public static let invalidTLS = Code("TASKAPI_INVALID_TLS")
        /// A provider name that matches no profile.
        public static let unknownProvider = Code("TASKAPI_UNKNOWN_PROVIDER")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
