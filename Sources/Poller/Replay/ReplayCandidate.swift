import Foundation
import Kafka
import PollerCore
import TaskModel

/// A record of the topic being replayed, read: its position, time and reason, and the
/// copy that would go back to the input, or why none can.
public struct ReplayCandidate: Sendable {
    public var position: ReplayPosition
    public var timestamp: Timestamp?
    /// The reason code; `unreadable` when the record is not one of its topic's messages.
    public var reason: String
    public var copy: Result<KafkaOutgoingRecord, Unreplayable>

    /// Why a chosen record cannot go back to the input.
    public enum Unreplayable: String, Error, Sendable, CaseIterable {
        /// Not a dead letter (or failure) as the schema has it.
        case unreadable
        /// The dead letter kept only the first bytes of the key or value.
        case truncated
        /// The event's own clientKey was redacted in the dead letter: the copy would poll with `[REDACTED]`.
        case clientKeyRedacted = "client_key_redacted"
        /// A failure that polling again cannot mend (`ReplaySource.retryableFailures`).
        case notRetryable = "not_retryable"
        /// A failure whose task's result window has closed: the provider no longer holds it.
        case windowClosed = "window_closed"
    }

    /// A dead letter: its copy is the original record's key and value, with the dead
    /// letter's headers (its `ezpoll-schema` left out: it named the dead letter's schema).
    public init(deadLetter record: KafkaRecord, inputTopic: String) {
        self.init(record, reason: "unreadable")
        guard let members = try? JSONScanner.members(ofObject: record.value ?? []),
              let reasonBytes = Self.member("reason", of: members, in: record.value ?? []),
              let reasonMembers = try? JSONScanner.members(ofObject: reasonBytes),
              let code = Self.string("code", of: reasonMembers, in: reasonBytes) else {
            copy = .failure(.unreadable)
            return
        }
        reason = code
        let bytes = record.value ?? []
        do {
            let key = try Self.original("key", of: members, in: bytes)
            let value = try Self.original("value", of: members, in: bytes)
            if let value, Self.hasRedactedClientKey(value) { throw Unreplayable.clientKeyRedacted }
            copy = .success(KafkaOutgoingRecord(topic: inputTopic, key: key, value: value, headers: copyHeaders(of: record)))
        } catch {
            copy = .failure(error as? Unreplayable ?? .unreadable)
        }
    }

    /// A failure: its copy is a task event rebuilt from the failure's fields (taskId,
    /// createdAt, provider, taskType, correlationId, metadata), keyed like the failure (by
    /// taskId). A failure has no clientKey, so the copy is polled with the configured key.
    public init(failure record: KafkaRecord, inputTopic: String, resultWindow: Duration, now: Timestamp) {
        self.init(record, reason: "unreadable")
        let bytes = record.value ?? []
        guard let members = try? JSONScanner.members(ofObject: bytes),
              let reasonCode = Self.string("reason", of: members, in: bytes) else {
            copy = .failure(.unreadable)
            return
        }
        reason = reasonCode
        guard let failureReason = FailureReason(rawValue: reasonCode), ReplaySource.retryableFailures.contains(failureReason) else {
            copy = .failure(.notRetryable)
            return
        }
        guard let taskId = Self.string("taskId", of: members, in: bytes), !taskId.isEmpty,
              let createdText = Self.string("createdAt", of: members, in: bytes), let createdAt = Timestamp(rfc3339: createdText),
              let provider = Self.string("provider", of: members, in: bytes) else {
            copy = .failure(.unreadable)
            return
        }
        guard createdAt + resultWindow > now else {
            copy = .failure(.windowClosed)
            return
        }
        var w = JSONWriter(capacity: 256 + bytes.count)
        w.string("taskId", taskId)
        w.string("createdAt", createdText)
        w.string("provider", provider)
        w.optionalString("taskType", Self.string("taskType", of: members, in: bytes))
        w.optionalString("correlationId", Self.string("correlationId", of: members, in: bytes))
        if let metadata = Self.member("metadata", of: members, in: bytes, kind: .object) {
            w.raw("metadata", RawJSON(unchecked: metadata))
        }
        copy = .success(KafkaOutgoingRecord(topic: inputTopic, key: record.key ?? Array(taskId.utf8), value: w.finish(),
                                            headers: copyHeaders(of: record)))
    }

    private init(_ record: KafkaRecord, reason: String) {
        position = ReplayPosition(of: record)
        timestamp = record.timestampMs.map(Timestamp.init(millisecondsSinceEpoch:))
        self.reason = reason
        copy = .failure(.unreadable)
    }

    /// The copied record's headers without its schema header and replay headers, then
    /// this replay's headers.
    private func copyHeaders(of record: KafkaRecord) -> [KafkaHeader] {
        record.headers.filter { $0.name != MessageSchema.headerKey && !$0.name.hasPrefix(ReplayHeader.prefix) }
            + ReplayHeader.headers(for: position, reason: reason)
    }

    private static func member(_ name: String, of members: [JSONMember], in bytes: [UInt8], kind: JSONValueKind? = nil) -> [UInt8]? {
        guard let member = members.last(where: { $0.key == name }), kind.map({ member.kind == $0 }) ?? true else { return nil }
        return Array(bytes[member.range])
    }

    private static func string(_ name: String, of members: [JSONMember], in bytes: [UInt8]) -> String? {
        guard let member = members.last(where: { $0.key == name }), member.kind == .string else { return nil }
        return try? JSONScanner.decodeString(bytes, member.range)
    }

    /// The original bytes a dead letter keeps under `name` (`null`: none), decoded.
    private static func original(_ name: String, of members: [JSONMember], in bytes: [UInt8]) throws -> [UInt8]? {
        guard let entry = members.last(where: { $0.key == name }) else { throw Unreplayable.unreadable }
        if entry.kind == .null { return nil }
        let object = Array(bytes[entry.range])
        guard entry.kind == .object, let fields = try? JSONScanner.members(ofObject: object),
              let encoding = string("encoding", of: fields, in: object), let data = string("data", of: fields, in: object),
              let truncated = member("truncated", of: fields, in: object, kind: .bool) else { throw Unreplayable.unreadable }
        guard truncated == Array("false".utf8) else { throw Unreplayable.truncated }
        switch encoding {
        case "utf8": return Array(data.utf8)
        case "base64":
            guard let decoded = Data(base64Encoded: data) else { throw Unreplayable.unreadable }
            return Array(decoded)
        default: throw Unreplayable.unreadable
        }
    }

    /// Whether `value` is an object whose top-level `clientKey` the dead letter redacted.
    private static func hasRedactedClientKey(_ value: [UInt8]) -> Bool {
        guard let members = try? JSONScanner.members(ofObject: value) else { return false }
        return string("clientKey", of: members, in: value) == String(decoding: ClientKeyRedactor.marker, as: UTF8.self)
    }
}
