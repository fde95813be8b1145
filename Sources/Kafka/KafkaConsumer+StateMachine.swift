extension KafkaConsumer {
    /// The consumer's life as a value: its lifecycle, its assignment and pause state,
    /// and the group's join state that decides when explicit commits may go out.
    /// Each mutating method takes one event and returns what the consumer must do;
    /// the consumer keeps the machine in a lock and does the librdkafka calls outside
    /// it (librdkafka's threads call back into the machine, so a call made under the
    /// lock could deadlock).
    struct StateMachine: Sendable {
        enum Lifecycle: Sendable, Equatable {
            /// Created; `subscribe` not called yet.
            case initializing
            /// `subscribe` is talking to librdkafka.
            case subscribing
            /// Subscribed: the polling thread serves librdkafka.
            case running
            /// A close was asked for; the polling thread is committing and leaving the group.
            case closing
            case closed
        }

        private(set) var lifecycle = Lifecycle.initializing
        private var closeWaiters: [CheckedContinuation<Void, Never>] = []
        /// The partitions currently assigned to this member.
        private(set) var assignment = Set<TopicPartition>()
        private var pausedPartitions = Set<TopicPartition>()
        private var pauseAllAssigned = false
        private(set) var rebalanceHandler: RebalanceHandler?
        /// Moves on with every change of the assignment.
        private(set) var rebalanceGeneration = 0
        /// Whether an assignment (even an empty one) has reached this member yet.
        private(set) var hasBeenAssigned = false
        /// The join state librdkafka last reported; nil until the first report (then
        /// only the rebalance-conflict rule holds commits).
        private(set) var joinState: GroupJoinState?
        /// When a commit met a rebalance; commits wait from then until the next
        /// rebalance callback or the steady state, at most `sessionTimeout`.
        private var commitsHeldSince: ContinuousClock.Instant?
        let sessionTimeout: Duration

        init(sessionTimeout: Duration) {
            self.sessionTimeout = sessionTimeout
        }

        // MARK: Lifecycle

        mutating func setRebalanceHandler(_ handler: @escaping RebalanceHandler) {
            rebalanceHandler = handler
        }

        enum SubscribeAction {
            /// Subscribe with librdkafka, then report `subscribeSucceeded` or `subscribeFailed`.
            case subscribe
            case fail(KafkaError)
        }

        mutating func subscribe() -> SubscribeAction {
            guard lifecycle == .initializing else {
                return .fail(KafkaError(.consumer, "subscribe called twice or after close"))
            }
            lifecycle = .subscribing
            return .subscribe
        }

        /// librdkafka took the subscription: the polling thread must start (also when a
        /// close came in meanwhile: the thread then closes at once).
        mutating func subscribeSucceeded() {
            if lifecycle == .subscribing { lifecycle = .running }
        }

        /// librdkafka refused the subscription: `subscribe` may be called again, or, when
        /// a close came in meanwhile, the consumer is closed: the returned waiters resume.
        mutating func subscribeFailed() -> CloseAction {
            if lifecycle == .closing { return .finish(waiters: pollingFinished()) }
            lifecycle = .initializing
            return .none
        }

        enum CloseAction {
            case none
            /// End `batches` and resume these `close()` callers.
            case finish(waiters: [CheckedContinuation<Void, Never>])
            /// Ask the polling thread to stop and wait (`addCloseWaiter`) until it has.
            case stopPollingAndWait
        }

        mutating func close() -> CloseAction {
            switch lifecycle {
            case .initializing:
                lifecycle = .closed
                return .finish(waiters: [])
            case .subscribing, .running:
                lifecycle = .closing
                return .stopPollingAndWait
            case .closing:
                return .stopPollingAndWait
            case .closed:
                return .finish(waiters: [])
            }
        }

        /// A `close()` caller waits for the polling thread. Returns false when the
        /// consumer is closed already (resume it now).
        mutating func addCloseWaiter(_ waiter: CheckedContinuation<Void, Never>) -> Bool {
            guard lifecycle != .closed else { return false }
            closeWaiters.append(waiter)
            return true
        }

        /// The polling thread closed the consumer: the returned `close()` callers resume.
        mutating func pollingFinished() -> [CheckedContinuation<Void, Never>] {
            lifecycle = .closed
            defer { closeWaiters.removeAll() }
            return closeWaiters
        }

        // MARK: Rebalances

        /// The rebalance callback runs: the group reached its sync point and this
        /// member's generation is current, so commits are safe again.
        mutating func rebalanceCallbackStarted() {
            commitsHeldSince = nil
        }

        struct AssignAction {
            /// Partitions of the assignment that must stay paused, and the others.
            var pause: [TopicPartition]
            var resume: [TopicPartition]
            var handler: RebalanceHandler?
        }

        /// Partitions were assigned (added to the assignment under the cooperative
        /// protocol, replacing it under the eager one).
        mutating func assigned(_ partitions: [TopicPartition], cooperative: Bool) -> AssignAction {
            if cooperative { assignment.formUnion(partitions) } else { assignment = Set(partitions) }
            rebalanceGeneration += 1
            hasBeenAssigned = true
            let (pause, resume) = pauseSplit(partitions)
            return AssignAction(pause: pause, resume: resume, handler: rebalanceHandler)
        }

        /// Which of `partitions` must be paused now, and which not.
        func pauseSplit(_ partitions: [TopicPartition]) -> (pause: [TopicPartition], resume: [TopicPartition]) {
            partitions.reduce(into: ([TopicPartition](), [TopicPartition]())) { split, tp in
                if isPaused(tp) { split.0.append(tp) } else { split.1.append(tp) }
            }
        }

        /// The handler has seen the revoke: the partitions leave the assignment.
        mutating func revoked(_ partitions: [TopicPartition], cooperative: Bool) {
            if cooperative { assignment.subtract(partitions) } else { assignment.removeAll() }
            rebalanceGeneration += 1
        }

        /// A rebalance error: the whole assignment is gone. Returns what was assigned.
        mutating func rebalanceFailed() -> [TopicPartition] {
            defer {
                assignment.removeAll()
                rebalanceGeneration += 1
            }
            return Array(assignment)
        }

        // MARK: Pause and resume (each returns the partitions to pause or resume now)

        mutating func pause(_ partitions: [TopicPartition]) -> [TopicPartition] {
            pausedPartitions.formUnion(partitions)
            return partitions.filter { assignment.contains($0) }
        }

        mutating func resume(_ partitions: [TopicPartition]) -> [TopicPartition] {
            pausedPartitions.subtract(partitions)
            return pauseAllAssigned ? [] : partitions.filter { assignment.contains($0) }
        }

        mutating func pauseAll() -> [TopicPartition] {
            pauseAllAssigned = true
            return Array(assignment)
        }

        mutating func resumeAll() -> [TopicPartition] {
            pauseAllAssigned = false
            return assignment.filter { !pausedPartitions.contains($0) }
        }

        func isPaused(_ partition: TopicPartition) -> Bool {
            pauseAllAssigned || pausedPartitions.contains(partition)
        }

        // MARK: Commits

        /// librdkafka reported a new join state of the group.
        mutating func joinStateChanged(to state: GroupJoinState) {
            joinState = state
            if state == .steady { commitsHeldSince = nil }
        }

        /// Whether explicit commits must wait now: the group is not `steady`, or a
        /// commit met a rebalance less than the session timeout ago and no rebalance
        /// callback has run since.
        mutating func commitsHeld(now: ContinuousClock.Instant) -> Bool {
            if let since = commitsHeldSince, since.duration(to: now) < sessionTimeout { return true }
            commitsHeldSince = nil
            return joinState.map { $0 != .steady } ?? false
        }

        enum CommitAction: Equatable {
            case commit
            /// Not now: the group is rebalancing.
            case hold
        }

        /// An explicit commit wants to go out. The rebalance callback's own commits
        /// and forced ones are never held.
        mutating func commitRequested(force: Bool, inRebalanceCallback: Bool, now: ContinuousClock.Instant) -> CommitAction {
            !force && !inRebalanceCallback && commitsHeld(now: now) ? .hold : .commit
        }

        /// A commit came back. Returns true when it met a rebalance outside the rebalance
        /// callback: commits are held from now on until the rebalance ends.
        mutating func commitFinished(metRebalance: Bool, inRebalanceCallback: Bool, now: ContinuousClock.Instant) -> Bool {
            guard metRebalance, !inRebalanceCallback else { return false }
            commitsHeldSince = now
            return true
        }
    }
}

/// The consumer group's join state, as librdkafka 2.0.2 reports it in its `CGRPJOINSTATE`
/// debug line (it has no API for it).
enum GroupJoinState: Equatable, Sendable {
    /// Joined and assigned: commits of this generation go through.
    case steady
    /// Any other state (`init`, `wait-join`, `wait-metadata`, `wait-sync`,
    /// `wait-assign-call`, ...), by librdkafka's name: the group is (re)joining.
    case joining(String)

    init(librdkafkaName name: String) {
        self = name == "steady" ? .steady : .joining(name)
    }
}
