/// Why the simulator refused a configuration or could not start.
public enum SimulatorError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A configuration patch that is not valid.
    case badConfig(String)
    /// The server could not bind or start.
    case startFailed(String)

    /// The stable code, then the reason.
    public var description: String {
        switch self {
        case .badConfig(let message): return "SIM_BAD_CONFIG: \(message)"
        case .startFailed(let message): return "SIM_START_FAILED: \(message)"
        }
    }
}
