import Kafka
import PollerCore

/// The decisions of one replay, without I/O: which records of the topic being replayed
/// are chosen (`consider`), which of them a copy in the input already replays
/// (`noteInput`), and what goes back (`copies`). The counts go to `report`.
///
/// A record is replayed once: a copy in the input naming its position (headers
/// `ezpoll-replay-*`) means it was, and it is not copied again unless `force`. The input
/// itself is the record of what was replayed, so the refusal survives restarts and
/// crashes: a copy the broker stored is found whether or not its acknowledgement came back.
public struct ReplayPlan: Sendable {
    public let source: ReplaySource
    public let filter: ReplayFilter
    public let force: Bool
    public private(set) var report: ReplayReport
    /// Chosen records that can go back, in the order read.
    private var chosen: [ReplayCandidate] = []
    private var replayed: Set<ReplayPosition> = []
    private let read: @Sendable (KafkaRecord) -> ReplayCandidate

    /// `now` and `resultWindow` decide whether a failure's task can still be polled.
    public init(source: ReplaySource, sourceTopic: String, inputTopic: String, filter: ReplayFilter, force: Bool,
                resultWindow: Duration, now: Timestamp) {
        self.source = source
        self.filter = filter
        self.force = force
        report = ReplayReport(sourceTopic: sourceTopic, inputTopic: inputTopic)
        switch source {
        case .deadLetters: read = { ReplayCandidate(deadLetter: $0, inputTopic: inputTopic) }
        case .failures: read = { ReplayCandidate(failure: $0, inputTopic: inputTopic, resultWindow: resultWindow, now: now) }
        }
    }

    /// A record read from the topic being replayed.
    public mutating func consider(_ record: KafkaRecord) {
        report.scanned += 1
        guard filter.admits(partition: record.partition, timestamp: record.timestampMs.map(Timestamp.init(millisecondsSinceEpoch:))) else { return }
        let candidate = read(record)
        guard filter.admits(reason: candidate.reason) else { return }
        report.matching += 1
        report.matchingByReason[candidate.reason, default: 0] += 1
        report.matchingByPartition[record.partition, default: 0] += 1
        switch candidate.copy {
        case .success: chosen.append(candidate)
        case .failure(let cause): report.unreplayable[cause.rawValue, default: 0] += 1
        }
    }

    /// The offsets read from the topic being replayed, per partition.
    public mutating func noteRanges(_ ranges: KafkaTopicReader.Ranges) {
        for (partition, range) in ranges { report.ranges[partition.partition] = range }
    }

    /// Whether the input must be read for earlier copies at all.
    public var needsInput: Bool { !chosen.isEmpty }

    /// A record read from the input: a copy of a record of the topic being replayed is noted.
    public mutating func noteInput(_ record: KafkaRecord) {
        report.inputScanned += 1
        if let position = ReplayPosition(copyHeaders: record.headers), position.topicPartition.topic == report.sourceTopic {
            replayed.insert(position)
        }
    }

    /// The copies to write, in the order their records were read: every chosen record
    /// with no copy in the input yet, or every one when forced.
    public mutating func copies() -> [KafkaOutgoingRecord] {
        let already = chosen.filter { replayed.contains($0.position) }.count
        report.alreadyReplayed = already
        let going = chosen.filter { force || !replayed.contains($0.position) }
        report.toCopy = going.count
        return going.compactMap { try? $0.copy.get() }
    }
}
