/// What one replay found and did, printed by `ezpoll replay` (also on a dry run).
/// Counts only: no key, value or clientKey.
public struct ReplayReport: Sendable, Hashable {
    public var sourceTopic: String
    public var inputTopic: String
    public var dryRun = false
    public var force = false
    /// Records read from the topic being replayed, and the offsets read per partition.
    public var scanned = 0
    public var ranges: [Int32: Range<Int64>] = [:]
    /// Records the filter chose, by reason code and by partition.
    public var matching = 0
    public var matchingByReason: [String: Int] = [:]
    public var matchingByPartition: [Int32: Int] = [:]
    /// Chosen records that cannot go back, by cause (`ReplayCandidate.Unreplayable`).
    public var unreplayable: [String: Int] = [:]
    /// Input records read while looking for earlier copies.
    public var inputScanned = 0
    /// Chosen records an earlier replay already copied to the input.
    public var alreadyReplayed = 0
    /// Copies to write (on a dry run: that would be written).
    public var toCopy = 0
    /// Copies the brokers acknowledged, and copies that failed.
    public var copied = 0
    public var failed = 0

    public init(sourceTopic: String, inputTopic: String) {
        self.sourceTopic = sourceTopic
        self.inputTopic = inputTopic
    }

    /// The report as lines for people.
    public var lines: [String] {
        func counts<K: Comparable>(_ counts: [K: Int]) -> String {
            counts.isEmpty ? "none" : counts.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        let read = ranges.sorted { $0.key < $1.key }.map { "[\($0.key)] \($0.value.lowerBound)..<\($0.value.upperBound)" }
        var lines = [
            "\(dryRun ? "dry run: " : "")replay from \(sourceTopic) to \(inputTopic)",
            "scanned: \(scanned) records (offsets \(read.isEmpty ? "none" : read.joined(separator: ", ")))",
            "matching: \(matching)",
            "  by reason: \(counts(matchingByReason))",
            "  by partition: \(counts(matchingByPartition))",
            "not replayable: \(unreplayable.values.reduce(0, +))\(unreplayable.isEmpty ? "" : " (\(counts(unreplayable)))")",
            "already replayed: \(alreadyReplayed) (found among \(inputScanned) input records)\(alreadyReplayed > 0 && !force ? ": not copied again; --force copies them again" : "")",
        ]
        if dryRun {
            lines.append("would copy: \(toCopy) (nothing was written)")
        } else {
            lines.append("copied: \(copied) of \(toCopy) (acknowledged by the brokers)\(failed > 0 ? ", failed: \(failed): run again to copy them" : "")")
        }
        if toCopy == 0 && alreadyReplayed > 0 && !force {
            lines.append("nothing to copy: every matching record was replayed before (--force to copy again)")
        }
        return lines
    }
}
