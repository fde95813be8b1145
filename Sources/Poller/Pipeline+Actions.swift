import Foundation
import Kafka
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

// Pipeline: the engine's actions, run after its lock is released.
extension Pipeline {
    /// Everything but publishing and calling; safe on any thread (also inside the
    /// rebalance callback and the delivery callback).
    func perform(_ actions: [PollingEngine.Action]) {
        for action in actions {
            switch action {
            case .commitSoon:
                commitRequester.yield()
            case .skippedFinished(let partition, let offset):
                counters.skippedFinished()
                logger.debug("skipped: finished by the last owner", metadata: ["partition": "\(partition)", "offset": "\(offset)"])
            case .commitMetadataIgnored(let partition, let reason):
                logger.warning("commit metadata ignored; records finished above the committed offset will be processed again",
                               metadata: ["partition": "\(partition)", "reason": "\(reason)"])
            case .pauseFetching:
                logger.info("in-flight limit reached: pausing input", metadata: ["inFlight": "\(withEngine { $0.inFlightLimit })"])
                applyFetchWish()
            case .takeHeldInput:
                wakeup.signal() // the dispatcher's tick takes them, then resumes the input
            case .resumeFetching:
                guard !stopRequested.isSet else { break } // stopping: the input stays paused
                logger.info("in flight below the low-water mark: resuming input")
                applyFetchWish()
            case .banned(let until):
                logger.error("ERROR_IP_BANNED: every call paused", metadata: ["until": "\(until)"])
                metrics.ipBanned(until: until, now: WallClock.now())
            case .keyDisabled(let key, let code):
                logger.error("account error: no more calls with this key; its tasks fail",
                             metadata: ["key": "\(key.fingerprint)", "errorCode": "\(code)"])
                metrics.accountDisabled()
            case .slowdownChanged(let factor):
                logger.warning("API error rate changed the polling slowdown", metadata: ["factor": "\(factor)"])
            case .call, .publishSolution, .publishFailure, .publishDeadLetter:
                assertionFailure("perform cannot publish or call")
            }
        }
    }

    /// Pauses or resumes the input as the engine wants it now (paused while stopping, and
    /// while an account's balance is empty), whichever asked: the last application
    /// follows the last change.
    func applyFetchWish() {
        fetchWish.withLock {
            if stopRequested.isSet || withEngine({ $0.isFetchingPaused }) || !emptyAccounts.withLockedValue({ $0.isEmpty }) {
                consumer.pauseAll()
            } else {
                consumer.resumeAll()
            }
        }
    }

    func performAsync(_ actions: [PollingEngine.Action]) async {
        var other: [PollingEngine.Action] = []
        for action in actions {
            switch action {
            case .publishSolution(let handle, let message):
                counters.solved()
                let now = WallClock.now()
                metrics.finished(failure: nil, createdAt: message.context.createdAt, now: now)
                metrics.solutionPublished(expiresAt: message.expiresAt, now: now)
                metrics.taskEnded(provider: message.context.provider, taskType: message.context.taskType, polls: message.polls,
                                  receipt: message.receipt)
                tracing?.ending(handle, .init(context: message.context, outcome: "solved", failed: false, polls: message.polls,
                                              resolvedAt: message.resolvedAt))
                await publish(.task(handle), record(message.context.taskId, message.jsonBytes(), configuration.topics.solutions, .solution,
                                                    trace: message.context.trace))
            case .publishFailure(let handle, let message):
                counters.failed(message.reason)
                metrics.finished(failure: message.reason, createdAt: message.context.createdAt, now: WallClock.now())
                metrics.taskEnded(provider: message.context.provider, taskType: message.context.taskType, polls: message.polls, receipt: nil)
                tracing?.ending(handle, .init(context: message.context, outcome: message.reason.rawValue, failed: true, polls: message.polls,
                                              resolvedAt: message.resolvedAt))
                await publish(.task(handle), record(message.context.taskId, message.jsonBytes(), configuration.topics.failures, .failure,
                                                    trace: message.context.trace))
            case .publishDeadLetter(let token, let message):
                counters.deadLettered(message.reason.code)
                metrics.deadLettered(message.reason.code)
                await publish(.deadLetter(token), KafkaOutgoingRecord(
                    topic: configuration.topics.deadLetters, key: message.recordKey, value: message.jsonBytes(),
                    headers: Self.headers(.deadLetter, message.trace)))
            default:
                other.append(action)
            }
        }
        perform(other)
    }
}
