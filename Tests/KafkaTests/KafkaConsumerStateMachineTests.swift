@testable import Kafka
import Testing
import TestSupport

/// The consumer's state machine alone: events in, actions out, no broker.
@Suite("KafkaConsumer.StateMachine")
struct KafkaConsumerStateMachineTests {
    typealias Machine = KafkaConsumer.StateMachine
    let a0 = TopicPartition("a", 0), a1 = TopicPartition("a", 1), a2 = TopicPartition("a", 2)

    func subscribed() -> Machine {
        var machine = Machine(sessionTimeout: .seconds(6))
        guard case .subscribe = machine.subscribe() else { Issue.record("first subscribe refused"); return machine }
        machine.subscribeSucceeded()
        return machine
    }

    @Test("subscribe once; close waits for the polling thread, which wakes every close caller")
    func lifecycle() async {
        var machine = subscribed()
        #expect(machine.lifecycle == .running)
        guard case .fail(let error) = machine.subscribe() else { Issue.record("second subscribe accepted"); return }
        #expect(error.code == .consumer)
        guard case .stopPollingAndWait = machine.close() else { Issue.record("close did not wait for the thread"); return }
        #expect(machine.lifecycle == .closing)
        guard case .stopPollingAndWait = machine.close() else { Issue.record("second close did not wait"); return }
        await withCheckedContinuation { (first: CheckedContinuation<Void, Never>) in
            let waits = machine.addCloseWaiter(first)
            #expect(waits)
            let waiters = machine.pollingFinished()
            #expect(waiters.count == 1)
            waiters.forEach { $0.resume() }
        }
        #expect(machine.lifecycle == .closed)
        await withCheckedContinuation { (late: CheckedContinuation<Void, Never>) in
            let waits = machine.addCloseWaiter(late)
            #expect(!waits, "a caller arriving after the close resumes at once")
            late.resume()
        }
        guard case .finish(let waiters) = machine.close(), waiters.isEmpty else { Issue.record("close after closed"); return }
    }

    @Test("close before subscribe finishes at once and forbids a later subscribe")
    func closeBeforeSubscribe() {
        var machine = Machine(sessionTimeout: .seconds(6))
        guard case .finish(let waiters) = machine.close(), waiters.isEmpty else { Issue.record("close did not finish"); return }
        #expect(machine.lifecycle == .closed)
        guard case .fail = machine.subscribe() else { Issue.record("subscribe after close accepted"); return }
    }

    @Test("a failed subscribe may be retried; one that fails under a close finishes the close")
    func failedSubscribe() async {
        var machine = Machine(sessionTimeout: .seconds(6))
        _ = machine.subscribe()
        #expect(machine.lifecycle == .subscribing)
        guard case .none = machine.subscribeFailed() else { Issue.record("failed subscribe finished"); return }
        #expect(machine.lifecycle == .initializing)
        guard case .subscribe = machine.subscribe() else { Issue.record("retry refused"); return }
        guard case .stopPollingAndWait = machine.close() else { Issue.record("close while subscribing"); return }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let waits = machine.addCloseWaiter(waiter)
            #expect(waits)
            guard case .finish(let waiters) = machine.subscribeFailed() else {
                Issue.record("close not finished")
                waiter.resume()
                return
            }
            #expect(waiters.count == 1)
            waiters.forEach { $0.resume() }
        }
        #expect(machine.lifecycle == .closed)
    }

    @Test("a close during a successful subscribe stays a close")
    func closeDuringSubscribe() {
        var machine = Machine(sessionTimeout: .seconds(6))
        _ = machine.subscribe()
        _ = machine.close()
        machine.subscribeSucceeded()
        #expect(machine.lifecycle == .closing)
    }

    @Test("eager and cooperative assignments, revokes and a rebalance error move the generation")
    func assignments() {
        var machine = subscribed()
        #expect(!machine.hasBeenAssigned)
        _ = machine.assigned([a0, a1], cooperative: false)
        #expect(machine.assignment == [a0, a1])
        #expect(machine.hasBeenAssigned)
        #expect(machine.rebalanceGeneration == 1)
        _ = machine.assigned([a2], cooperative: false)
        #expect(machine.assignment == [a2], "an eager assignment replaces the last one")
        _ = machine.assigned([a0], cooperative: true)
        #expect(machine.assignment == [a0, a2], "a cooperative assignment adds to it")
        machine.revoked([a2], cooperative: true)
        #expect(machine.assignment == [a0])
        _ = machine.assigned([a1], cooperative: true)
        machine.revoked([a1], cooperative: false)
        #expect(machine.assignment.isEmpty, "an eager revoke takes everything")
        _ = machine.assigned([a0, a1], cooperative: true)
        #expect(Set(machine.rebalanceFailed()) == [a0, a1])
        #expect(machine.assignment.isEmpty)
        #expect(machine.rebalanceGeneration == 8)
    }

    @Test("the handler set before subscribing comes with each assignment")
    func handler() {
        var machine = Machine(sessionTimeout: .seconds(6))
        let noHandler = machine.assigned([a0], cooperative: false).handler == nil
        #expect(noHandler)
        let seen = Locked<[KafkaConsumer.RebalanceEvent]>([])
        machine.setRebalanceHandler { event in seen.withLock { $0.append(event) } }
        machine.assigned([a1], cooperative: false).handler?(.assigned([a1], committed: nil))
        machine.rebalanceHandler?(.revoked([a1], lost: true))
        #expect(seen.current == [.assigned([a1], committed: nil), .revoked([a1], lost: true)])
    }

    @Test("pauses survive rebalances; pauseAll covers later assignments; resumeAll keeps single pauses")
    func pauses() {
        var machine = subscribed()
        #expect(machine.pause([a0]).isEmpty, "nothing to pause in librdkafka before the assignment")
        #expect(machine.isPaused(a0))
        let first = machine.assigned([a0, a1], cooperative: false)
        #expect(first.pause == [a0])
        #expect(first.resume == [a1])
        #expect(machine.resume([a0, a2]) == [a0], "only assigned partitions are resumed in librdkafka")
        #expect(!machine.isPaused(a0))
        #expect(Set(machine.pauseAll()) == [a0, a1])
        #expect(machine.isPaused(a2))
        let second = machine.assigned([a2], cooperative: true)
        #expect(second.pause == [a2])
        #expect(second.resume.isEmpty)
        #expect(machine.resume([a1]).isEmpty, "pauseAll still holds")
        #expect(machine.pause([a1]) == [a1])
        #expect(Set(machine.resumeAll()) == [a0, a2])
        #expect(machine.isPaused(a1))
        #expect(!machine.isPaused(a2))
    }

    @Test("commits wait while the group is not steady, unless forced or inside the rebalance callback")
    func joinState() {
        var machine = subscribed()
        let now = ContinuousClock.now
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .commit,
                "before librdkafka reports a join state, only the conflict rule applies")
        machine.joinStateChanged(to: .joining("wait-join"))
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .hold)
        #expect(machine.commitRequested(force: true, inRebalanceCallback: false, now: now) == .commit)
        #expect(machine.commitRequested(force: false, inRebalanceCallback: true, now: now) == .commit)
        machine.joinStateChanged(to: .steady)
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .commit)
    }

    @Test("a commit that met a rebalance holds commits until the next callback, steady state or session timeout")
    func metRebalance() {
        var machine = subscribed()
        machine.joinStateChanged(to: .steady)
        let now = ContinuousClock.now
        let plain = machine.commitFinished(metRebalance: false, inRebalanceCallback: false, now: now)
        #expect(!plain)
        let inCallback = machine.commitFinished(metRebalance: true, inRebalanceCallback: true, now: now)
        #expect(!inCallback, "the callback's own commits never hold the others")
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .commit)

        let held = machine.commitFinished(metRebalance: true, inRebalanceCallback: false, now: now)
        #expect(held)
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now + .seconds(5)) == .hold)
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now + .seconds(6)) == .commit,
                "at most the session timeout")

        _ = machine.commitFinished(metRebalance: true, inRebalanceCallback: false, now: now)
        machine.rebalanceCallbackStarted()
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .commit)

        _ = machine.commitFinished(metRebalance: true, inRebalanceCallback: false, now: now)
        machine.joinStateChanged(to: .joining("wait-sync"))
        machine.joinStateChanged(to: .steady)
        #expect(machine.commitRequested(force: false, inRebalanceCallback: false, now: now) == .commit)
    }
}
