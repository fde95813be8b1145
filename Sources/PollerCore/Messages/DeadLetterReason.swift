/// Why an input record was rejected: a stable `code` (matches the dead-letter
/// schema's enum) and a message for people. Never contains a clientKey.
public struct DeadLetterReason: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Hashable, Sendable, CaseIterable {
        /// The record has no value (null payload / tombstone).
        case nullValue = "null_value"
        /// The value is larger than the configured limit.
        case valueTooLarge = "value_too_large"
        /// The value is not valid UTF-8.
        case notUTF8 = "not_utf8"
        /// The value is not JSON (syntax error, trailing data, empty).
        case invalidJSON = "invalid_json"
        /// The value is JSON but not an object.
        case notAnObject = "not_an_object"
        /// Nesting deeper than the configured limit.
        case nestingTooDeep = "nesting_too_deep"
        /// A field appears twice.
        case duplicateField = "duplicate_field"
        /// No `taskId` field.
        case missingTaskId = "missing_task_id"
        /// `taskId` is an empty (or blank) string.
        case emptyTaskId = "empty_task_id"
        /// `taskId` is neither a non-empty string nor a non-negative integer, or too long.
        case invalidTaskId = "invalid_task_id"
        /// `createdAt` is not an RFC 3339 date-time string.
        case invalidCreatedAt = "invalid_created_at"
        /// `metadata` is not an object.
        case invalidMetadata = "invalid_metadata"
        /// `metadata` is larger than the configured limit.
        case metadataTooLarge = "metadata_too_large"
        /// Another known field has the wrong type or is too long.
        case invalidField = "invalid_field"
        /// The event names a provider this instance is not configured to poll.
        case unknownProvider = "unknown_provider"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
