import Foundation
import Poller
import Testing

/// Validates output messages against `schemas/` with a real JSON Schema validator
/// (Python `jsonschema`, Draft 2020-12, date-time checked).
enum SchemaValidator {
    static let schemasDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas")

    static let script = #"""
    import json, sys, os
    from jsonschema import Draft202012Validator
    schemas_dir = sys.argv[1]
    checker = Draft202012Validator.FORMAT_CHECKER
    validators = {}
    for name in os.listdir(schemas_dir):
        if name.endswith(".schema.json"):
            with open(os.path.join(schemas_dir, name)) as f:
                schema = json.load(f)
            Draft202012Validator.check_schema(schema)
            validators[name] = Draft202012Validator(schema, format_checker=checker)
    bad = 0
    count = 0
    for line in sys.stdin:
        item = json.loads(line)
        count += 1
        errors = [e.message for e in validators[item["schema"]].iter_errors(json.loads(item["doc"]))]
        if errors:
            bad += 1
            if bad <= 10:
                print("INVALID %s: %s" % (item["schema"], "; ".join(errors)[:300]))
    print("CHECKED %d INVALID %d" % (count, bad))
    sys.exit(1 if bad else 0)
    """#

    /// Each message with the schema header it was published with.
    static func validate(_ messages: [(header: String?, value: [UInt8])]) throws {
        var input = Data()
        for (header, value) in messages {
            let schema = try #require(MessageSchema.allCases.first { $0.headerValue == header }, "unknown schema header \(header ?? "nil")")
            let line = try JSONSerialization.data(withJSONObject: ["schema": schema.fileName, "doc": String(decoding: value, as: UTF8.self)])
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
        try process.run()
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "schema validation failed:\n\(output)")
        #expect(output.contains("CHECKED \(messages.count) INVALID 0"), "\(output)")
    }
}
