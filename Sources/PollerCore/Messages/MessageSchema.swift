/// The message types ezpoll reads and writes, each with a schema file in `schemas/`.
/// Every produced record carries header `headerKey: headerValue` naming its schema.
public enum MessageSchema: String, CaseIterable, Sendable {
    case taskEvent = "task-event"
    case solution
    case failure
    case deadLetter = "dead-letter"

    /// Record header that names the schema of the value.
    public static let headerKey = "ezpoll-schema"

    /// Header value, e.g. `ezpoll.solution.v1`.
    public var headerValue: String { "ezpoll.\(rawValue).v1" }

    /// The schema's `$id`.
    public var schemaID: String { "urn:ezpoll:schema:\(rawValue):v1" }

    /// File name under `schemas/`.
    public var fileName: String { "\(rawValue).schema.json" }
}
