import TaskModel

/// One provider this engine polls: an event's `provider` picks it (by name, any case),
/// and the event's `taskType` may pick a policy of its own (an image captcha is ready
/// in seconds, an enterprise hCaptcha in a minute). Events naming a provider that has
/// no route are dead letters (`unknown_provider`).
public struct ProviderRoute: Sendable, Hashable {
    public var name: String
    public var policy: PollingPolicy
    /// Policies by `taskType` (exact name); other task types use `policy`.
    public var taskTypePolicies: [String: PollingPolicy]
    /// The key for this provider's events that carry none.
    public var defaultClientKey: ClientKey?
    /// Token lifetimes by task type, on the engine's clock (`SolutionMessage.expiresAt`).
    public var tokenLifetimes: TokenLifetimes

    public init(name: String, policy: PollingPolicy, taskTypePolicies: [String: PollingPolicy] = [:], defaultClientKey: ClientKey? = nil,
                tokenLifetimes: TokenLifetimes = .standard) {
        self.name = name
        self.policy = policy
        self.taskTypePolicies = taskTypePolicies
        self.defaultClientKey = defaultClientKey
        self.tokenLifetimes = tokenLifetimes
    }
}

/// The engine's routes, resolved once: provider name → route, and every policy in one
/// array so a task keeps a one-byte index into it.
struct ProviderRoutes: Sendable {
    struct Resolved: Sendable {
        var name: String
        /// Position among the routes (`CallbackKey`).
        var ordinal: UInt8
        var policyIndex: UInt8
        var taskTypeIndex: [String: UInt8]
        var defaultClientKey: ClientKey?
        var tokenLifetimes: TokenLifetimes
    }

    private(set) var policies: [PollingPolicy] = []
    /// The safety-schedule variant of each policy (`CallbackSchedule`), by policy index;
    /// empty when the engine takes no callbacks.
    private var callbackVariants: [UInt8] = []
    private var byName: [String: Resolved] = [:]
    let names: [String]

    /// `routes` empty: one route from the configuration's own provider, policy and key.
    init(_ configuration: PollingEngine.Configuration) {
        let routes = configuration.providers.isEmpty
            ? [ProviderRoute(name: configuration.defaultProvider, policy: configuration.policy, defaultClientKey: configuration.defaultClientKey,
                             tokenLifetimes: configuration.tokenLifetimes)]
            : configuration.providers
        names = routes.map(\.name)
        precondition(routes.count <= Int(UInt8.max), "ProviderRoutes: at most 255 providers")
        for (ordinal, route) in routes.enumerated() {
            let index = add(route.policy)
            var taskTypes: [String: UInt8] = [:]
            for (taskType, policy) in route.taskTypePolicies { taskTypes[taskType] = add(policy) }
            byName[route.name.lowercased()] = Resolved(name: route.name, ordinal: UInt8(ordinal), policyIndex: index, taskTypeIndex: taskTypes,
                                                       defaultClientKey: route.defaultClientKey ?? configuration.defaultClientKey,
                                                       tokenLifetimes: route.tokenLifetimes)
        }
        if let schedule = configuration.callbacks {
            let base = policies
            callbackVariants = base.map { add($0.expectingCallback(schedule)) }
        }
    }

    private mutating func add(_ policy: PollingPolicy) -> UInt8 {
        if let existing = policies.firstIndex(of: policy) { return UInt8(existing) }
        precondition(policies.count < Int(UInt8.max), "ProviderRoutes: at most 255 distinct policies")
        policies.append(policy)
        return UInt8(policies.count - 1)
    }

    func route(_ provider: String) -> Resolved? { byName[provider.lowercased()] }

    /// How long a token of `taskType` solved at `provider` stays usable, if known.
    func tokenLifetime(provider: String, taskType: String?) -> Duration? {
        route(provider)?.tokenLifetimes.lifetime(taskType: taskType)
    }

    /// The policy of a task: its task type's or its provider's, on the safety schedule
    /// when it expects a callback and callbacks are taken.
    func policyIndex(_ route: Resolved, taskType: String?, expectsCallback: Bool = false) -> UInt8 {
        let index = taskType.flatMap { route.taskTypeIndex[$0] } ?? route.policyIndex
        return expectsCallback && !callbackVariants.isEmpty ? callbackVariants[Int(index)] : index
    }
}
