/// The simulator's error type, with stable codes.
public struct SimulatorError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// A configuration patch that is not valid.
        public static let badConfig = Code("SIM_BAD_CONFIG")
        /// The server could not bind or start.
        public static let startFailed = Code("SIM_START_FAILED")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
