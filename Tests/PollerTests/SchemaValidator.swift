import Foundation
import Poller
import Testing
import TestSupport

/// Checks documents against `schemas/` with a real JSON Schema validator (Python
/// `jsonschema`, Draft 2020-12, date-time format checked), each expected to be valid
/// or invalid, so a test built on it can fail.
enum SchemaValidator {
    static let schemasDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas")

    static let script = #"""
    import base64, json, sys, os
    from jsonschema import Draft202012Validator
    checker = Draft202012Validator.FORMAT_CHECKER
    # Without rfc3339-validator, jsonschema silently skips date-time: refuse to pass then.
    if Draft202012Validator({"format": "date-time"}, format_checker=checker).is_valid("yesterday"):
        print("SETUP date-time format checking unavailable (pip install rfc3339-validator)")
        sys.exit(2)
    validators = {}
    for name in os.listdir(sys.argv[1]):
        if name.endswith(".schema.json"):
            with open(os.path.join(sys.argv[1], name)) as f:
                schema = json.load(f)
            Draft202012Validator.check_schema(schema)
            validators[name] = Draft202012Validator(schema, format_checker=checker)
    count = bad = 0
    for line in sys.stdin:
        item = json.loads(line)
        count += 1
        try:
            doc = json.loads(base64.b64decode(item["doc"]).decode("utf-8"))
        except Exception as e:
            errors = ["not JSON: %s" % e]
        else:
            errors = [e.message for e in validators[item["schema"]].iter_errors(doc)]
        if bool(errors) == item["valid"]:
            bad += 1
            if bad <= 20:
                print("MISMATCH #%d %s expected %s: %s" % (count, item["schema"], "valid" if item["valid"] else "invalid", "; ".join(errors)[:300]))
    print("CHECKED %d MISMATCHED %d" % (count, bad))
    sys.exit(1 if bad else 0)
    """#

    /// Each document with its schema and whether it must validate.
    static func check(_ items: [(schema: MessageSchema, bytes: [UInt8], valid: Bool)]) throws {
        var input = Data()
        for item in items {
            let line = try JSONSerialization.data(withJSONObject: [
                "schema": item.schema.fileName, "doc": Data(item.bytes).base64EncodedString(), "valid": item.valid,
            ])
            input.append(line)
            input.append(0x0A)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, schemasDirectory.path]
        let stdin = Pipe()
        let stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stdout
        try process.run()
        let bytes = input // written from another thread: a constant copy
        let writer = Thread {
            stdin.fileHandleForWriting.write(bytes)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "schema validation:\n\(output)")
        #expect(output.contains("CHECKED \(items.count) MISMATCHED 0"), "schema validation:\n\(output)")
    }

    /// Published messages, each with the schema header it carried: all must validate.
    static func validate(_ messages: [(header: String?, value: [UInt8])]) throws {
        let items = try messages.map { message in
            let schema = try #require(MessageSchema.allCases.first { $0.headerValue == message.header },
                                      "unknown schema header \(message.header ?? "nil")")
            return (schema: schema, bytes: message.value, valid: true)
        }
        try check(items)
    }
}
