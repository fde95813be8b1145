import TaskModel
/// Bytes of a tasks-topic record value → `TaskEvent`, or the `DeadLetterReason`
/// to dead-letter it with. One pass for UTF-8 (`UTF8Validation`), one for JSON
/// (TaskModel's `JSONScanner`), no intermediate tree, no traps on any input.
///
/// Unknown fields are skipped (forward compatibility); `null` for an optional
/// field means absent. Syntax errors win over field errors, so a broken record
/// is always `invalid_json` whatever it contained before the break.
public struct TaskEventDecoder: Sendable {
    public var maxValueBytes: Int
    public var maxMetadataBytes: Int
    /// Bound of taskId, clientKey, taskType, provider and correlationId, in UTF-8 bytes.
    public var maxFieldBytes: Int
    /// Nesting bound; the top-level object is depth 1.
    public var maxDepth: Int

    public init(maxValueBytes: Int = 64 * 1024, maxMetadataBytes: Int = 8 * 1024, maxFieldBytes: Int = 1024, maxDepth: Int = 32) {
        self.maxValueBytes = maxValueBytes
        self.maxMetadataBytes = maxMetadataBytes
        self.maxFieldBytes = maxFieldBytes
        self.maxDepth = maxDepth
    }

    public func decode(_ value: [UInt8]?) -> Result<TaskEvent, DeadLetterReason> {
        guard let value else { return .failure(DeadLetterReason(.nullValue, "the record has no value")) }
        return value.withUnsafeBytes { decode(buffer: $0) }
    }

    public func decode(buffer: UnsafeRawBufferPointer) -> Result<TaskEvent, DeadLetterReason> {
        guard buffer.count <= maxValueBytes else {
            return .failure(DeadLetterReason(.valueTooLarge, "value is \(buffer.count) bytes, the limit is \(maxValueBytes)"))
        }
        if let failure = UTF8Validation.firstInvalid(buffer) {
            let at: Int
            switch failure {
            case .invalid(let index), .truncated(let index): at = index
            }
            return .failure(DeadLetterReason(.notUTF8, "value is not valid UTF-8 (byte \(at))"))
        }
        var scanner = JSONScanner(buffer, maxDepth: maxDepth)
        scanner.skipWhitespace()
        guard scanner.peek() == UInt8(ascii: "{") else {
            if scanner.atEnd { return .failure(DeadLetterReason(.invalidJSON, "value is empty")) }
            switch scanner.skipValue(depth: 0) {
            case .tooDeep:
                return .failure(DeadLetterReason(.nestingTooDeep, "nesting deeper than \(maxDepth)"))
            case .ok:
                scanner.skipWhitespace()
                if scanner.atEnd { return .failure(DeadLetterReason(.notAnObject, "value is JSON but not an object")) }
                return .failure(syntaxError(scanner))
            case .syntax:
                return .failure(syntaxError(scanner))
            }
        }
        return decodeObject(&scanner)
    }

    private func syntaxError(_ scanner: JSONScanner) -> DeadLetterReason {
        DeadLetterReason(.invalidJSON, "value is not valid JSON (near byte \(min(scanner.index, scanner.bytes.count)))")
    }

    private enum Field: Int, CaseIterable {
        case taskId, clientKey, createdAt, taskType, provider, correlationId, metadata, callback
        var name: StaticString {
            switch self {
            case .taskId: return "taskId"
            case .clientKey: return "clientKey"
            case .createdAt: return "createdAt"
            case .taskType: return "taskType"
            case .provider: return "provider"
            case .correlationId: return "correlationId"
            case .metadata: return "metadata"
            case .callback: return "callback"
            }
        }
    }

    private func decodeObject(_ s: inout JSONScanner) -> Result<TaskEvent, DeadLetterReason> {
        s.index += 1 // "{"
        var event = TaskEvent(taskId: "")
        var seen: UInt8 = 0
        var firstError: DeadLetterReason?
        func note(_ reason: DeadLetterReason) { if firstError == nil { firstError = reason } }

        if !s.consume(UInt8(ascii: "}")) {
            while true {
                s.skipWhitespace()
                guard let keyToken = s.scanString(), s.consume(UInt8(ascii: ":")) else { return .failure(syntaxError(s)) }
                s.skipWhitespace()
                let field = Field.allCases.first { field in
                    keyToken.hasEscapes ? s.string(keyToken) == "\(field.name)" : s.rawEquals(keyToken, field.name)
                }
                if let field {
                    let bit = UInt8(1) << UInt8(field.rawValue)
                    if seen & bit != 0 { note(DeadLetterReason(.duplicateField, "field \(field.name) appears more than once")) }
                    seen |= bit
                    let valueStart = s.index
                    let outcome = s.skipValue(depth: 1)
                    switch outcome {
                    case .tooDeep: return .failure(DeadLetterReason(.nestingTooDeep, "nesting deeper than \(maxDepth)"))
                    case .syntax: return .failure(syntaxError(s))
                    case .ok: break
                    }
                    if let reason = read(field, valueStart..<s.index, from: s, into: &event) { note(reason) }
                } else {
                    switch s.skipValue(depth: 1) {
                    case .tooDeep: return .failure(DeadLetterReason(.nestingTooDeep, "nesting deeper than \(maxDepth)"))
                    case .syntax: return .failure(syntaxError(s))
                    case .ok: break
                    }
                }
                if s.consume(UInt8(ascii: ",")) { continue }
                guard s.consume(UInt8(ascii: "}")) else { return .failure(syntaxError(s)) }
                break
            }
        }
        s.skipWhitespace()
        guard s.atEnd else { return .failure(syntaxError(s)) }
        if let firstError { return .failure(firstError) }
        guard seen & 1 != 0 else { return .failure(DeadLetterReason(.missingTaskId, "field taskId is missing")) }
        return .success(event)
    }

    /// Reads one known field from its already validated value bytes.
    private func read(_ field: Field, _ range: Range<Int>, from s: JSONScanner, into event: inout TaskEvent) -> DeadLetterReason? {
        var v = JSONScanner(UnsafeRawBufferPointer(rebasing: s.bytes[range]), maxDepth: maxDepth)
        let first = v.peek()
        let isNull = first == UInt8(ascii: "n")
        switch field {
        case .taskId:
            if first == UInt8(ascii: "\"") {
                let token = v.scanString()!
                guard token.end - token.start <= maxFieldBytes else {
                    return DeadLetterReason(.invalidTaskId, "taskId is longer than \(maxFieldBytes) bytes")
                }
                let text = v.string(token)
                guard text.contains(where: { !$0.isWhitespace }) else {
                    return DeadLetterReason(.emptyTaskId, "taskId is empty")
                }
                event.taskId = text
                return nil
            }
            if let number = v.scanNumber() {
                if number.isPlainNonNegativeInteger {
                    guard number.end - number.start <= maxFieldBytes else {
                        return DeadLetterReason(.invalidTaskId, "taskId is longer than \(maxFieldBytes) bytes")
                    }
                    // The digits exactly as sent: no Double round trip, so ids above 2^53 survive.
                    event.taskId = String(decoding: UnsafeRawBufferPointer(rebasing: v.bytes[number.start..<number.end]), as: UTF8.self)
                    return nil
                }
                // 1e3, 12.50e1, -0: integers to JSON Schema too; normalised from the text.
                if let digits = Self.integerDigits(UnsafeRawBufferPointer(rebasing: v.bytes[number.start..<number.end]), maxLength: maxFieldBytes) {
                    event.taskId = digits
                    return nil
                }
            }
            return DeadLetterReason(.invalidTaskId, "taskId must be a non-empty string or a non-negative integer, got \(Self.kind(first))")
        case .metadata:
            if isNull { return nil }
            guard first == UInt8(ascii: "{") else {
                return DeadLetterReason(.invalidMetadata, "metadata must be an object, got \(Self.kind(first))")
            }
            guard range.count <= maxMetadataBytes else {
                return DeadLetterReason(.metadataTooLarge, "metadata is \(range.count) bytes, the limit is \(maxMetadataBytes)")
            }
            event.metadata = RawJSON(unchecked: ClientKeyRedactor.redact(Array(v.bytes)))
            return nil
        case .callback:
            if isNull { return nil }
            guard first == UInt8(ascii: "t") || first == UInt8(ascii: "f") else {
                return DeadLetterReason(.invalidField, "callback must be a boolean, got \(Self.kind(first))")
            }
            event.expectsCallback = first == UInt8(ascii: "t")
            return nil
        case .createdAt:
            if isNull { return nil }
            guard first == UInt8(ascii: "\""), let token = v.scanString(), token.end - token.start <= 64,
                  let timestamp = Timestamp(rfc3339: v.string(token)) else {
                return DeadLetterReason(.invalidCreatedAt, "createdAt must be an RFC 3339 date-time string")
            }
            event.createdAt = timestamp
            return nil
        case .clientKey, .taskType, .provider, .correlationId:
            if isNull { return nil }
            guard first == UInt8(ascii: "\""), let token = v.scanString() else {
                return DeadLetterReason(.invalidField, "\(field.name) must be a string, got \(Self.kind(first))")
            }
            guard token.end - token.start <= maxFieldBytes else {
                return DeadLetterReason(.invalidField, "\(field.name) is longer than \(maxFieldBytes) bytes")
            }
            let text = v.string(token)
            switch field {
            case .clientKey:
                guard !text.isEmpty else { return DeadLetterReason(.invalidField, "clientKey is empty") }
                event.clientKey = ClientKey(text)
            case .taskType: event.taskType = text
            case .provider: event.provider = text
            default: event.correlationId = text
            }
            return nil
        }
    }

    private static func kind(_ first: UInt8?) -> String {
        switch JSONScanner.kind(startingWith: first ?? UInt8(ascii: "0")) {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .bool: return "a boolean"
        case .null: return "null"
        case .number: return "a number"
        }
    }

    /// The decimal digits of a JSON number that is a non-negative integer in
    /// value (`1e3` → `1000`, `12.50e1` → `125`, `-0` → `0`), worked out on the
    /// text so no precision is lost; nil for a fraction, a negative number, or
    /// more than `maxLength` digits.
    static func integerDigits(_ text: UnsafeRawBufferPointer, maxLength: Int) -> String? {
        var i = 0
        var negative = false
        if i < text.count, text[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var inFraction = false
        while i < text.count, text[i] != UInt8(ascii: "e"), text[i] != UInt8(ascii: "E") {
            if text[i] == UInt8(ascii: ".") {
                inFraction = true
            } else {
                digits.append(text[i])
                if inFraction { fractionDigits += 1 }
            }
            i += 1
        }
        var exponent = 0
        if i < text.count {
            i += 1
            var sign = 1
            if text[i] == UInt8(ascii: "+") { i += 1 } else if text[i] == UInt8(ascii: "-") { sign = -1; i += 1 }
            while i < text.count {
                exponent = exponent * 10 + Int(text[i] - 0x30)
                if exponent > 1_000_000 { return nil } // absurd: more digits than any limit
                i += 1
            }
            exponent *= sign
        }
        exponent -= fractionDigits
        if exponent < 0 {
            // The dropped digits must all be zero.
            let drop = -exponent
            if drop > digits.count {
                guard digits.allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
                digits = []
            } else {
                guard digits[(digits.count - drop)...].allSatisfy({ $0 == UInt8(ascii: "0") }) else { return nil }
                digits.removeLast(drop)
            }
        }
        let firstNonZero = digits.firstIndex { $0 != UInt8(ascii: "0") }
        guard let firstNonZero else { return "0" } // zero, also -0
        guard !negative else { return nil }
        let significant = digits.count - firstNonZero
        guard exponent <= maxLength, significant + max(exponent, 0) <= maxLength else { return nil }
        var out = Array(digits[firstNonZero...])
        if exponent > 0 { out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: exponent)) }
        return String(decoding: out, as: UTF8.self)
    }
}
