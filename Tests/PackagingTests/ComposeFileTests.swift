import Foundation
import Testing

/// docker-compose.yml cannot run here (no Docker engine), so it is checked statically:
/// against the Compose Specification schema, and against the options and EZPOLL_*
/// variables that the built `ezpoll` binary's help lists (check_compose.py does both).
@Suite("Packaging: docker-compose.yml and Dockerfile")
struct ComposeFileTests {
    @Test("docker-compose.yml validates against the Compose Specification and sets only options ezpoll has")
    func composeFileIsValid() throws {
        let result = try Packaging.checkCompose(Packaging.repository.appendingPathComponent("docker-compose.yml"))
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("compose OK"))
    }

    @Test("the checker rejects broken compose files, naming the problem",
          arguments: BrokenCompose.allCases)
    func rejectsBrokenCompose(_ broken: BrokenCompose) throws {
        let original = try String(contentsOf: Packaging.repository.appendingPathComponent("docker-compose.yml"), encoding: .utf8)
        let mutated = broken.apply(to: original)
        #expect(mutated != original, "the mutation \(broken) must change the file")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-compose-\(UUID().uuidString).yml")
        try mutated.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let result = try Packaging.checkCompose(file)
        #expect(result.status == 1, "\(broken) must be rejected: \(result.output)")
        #expect(result.output.contains(broken.expectedMessage), "\(broken): \(result.output)")
    }

    @Test("Dockerfile: multi-stage Swift builder with librdkafka-dev, slim runtime with librdkafka1, non-root, ENTRYPOINT ezpoll")
    func dockerfile() throws {
        let text = try String(contentsOf: Packaging.repository.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let from = text.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(from.count == 2, "two stages")
        #expect(from.first?.contains("swift:") == true && from.first?.contains("bookworm") == true)
        #expect(from.last?.contains("debian:bookworm-slim") == true)
        #expect(text.contains("librdkafka-dev") && text.contains("librdkafka1"))
        #expect(text.contains("-c release") && text.contains("--static-swift-stdlib"))
        let user = text.split(separator: "\n").last { $0.hasPrefix("USER ") }
        #expect(user != nil && user?.contains("root") == false, "runs as a non-root user")
        #expect(text.contains(#"ENTRYPOINT ["ezpoll"]"#))
    }
}

/// Ways to break the compose file; each must be caught with its message.
enum BrokenCompose: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case schemaViolation
    case unknownVariable
    case unknownSimulateOption
    case unknownSubcommand
    case flagOnRun
    case singleReplica
    case missingTopic

    var testDescription: String { rawValue }

    func apply(to text: String) -> String {
        switch self {
        case .schemaViolation:
            // `replicas` must be an integer; `restart` a string.
            return text.replacingOccurrences(of: "replicas: 2", with: "replicas: [2]")
        case .unknownVariable:
            return text.replacingOccurrences(of: "EZPOLL_GROUP_ID: ezpoll", with: "EZPOLL_GROUP_ID: ezpoll\n      EZPOLL_NO_SUCH_SETTING: 1")
        case .unknownSimulateOption:
            return text.replacingOccurrences(of: #""--median", "15""#, with: #""--median", "15", "--no-such-option", "1""#)
        case .unknownSubcommand:
            return text.replacingOccurrences(of: #"command: ["simulate","#, with: #"command: ["simulator","#)
        case .flagOnRun:
            return text.replacingOccurrences(of: #"command: ["run"]"#, with: #"command: ["run", "--brokers", "kafka:9092"]"#)
        case .singleReplica:
            return text.replacingOccurrences(of: "replicas: 2", with: "replicas: 1")
        case .missingTopic:
            return text.replacingOccurrences(of: "create captcha.tasks.dlq 3", with: "")
        }
    }

    var expectedMessage: String {
        switch self {
        case .schemaViolation: return "schema: services/ezpoll/deploy/replicas"
        case .unknownVariable: return "reads no variable EZPOLL_NO_SUCH_SETTING"
        case .unknownSimulateOption: return "has no option --no-such-option"
        case .unknownSubcommand: return "`ezpoll simulator` is not a subcommand"
        case .flagOnRun: return "configured through EZPOLL_* variables only"
        case .singleReplica: return "at least 2 replicas"
        case .missingTopic: return "topic captcha.tasks.dlq"
        }
    }
}

enum Packaging {
    /// The repository root (this file is Tests/PackagingTests/ComposeFileTests.swift).
    static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let testsDirectory = repository.appendingPathComponent("Tests/PackagingTests")

    struct Result { var status: Int32; var output: String }

    /// The `ezpoll` binary built beside this test bundle (`swift build --build-tests` builds it),
    /// or `EZPOLL_BINARY`.
    static func ezpollBinary() throws -> String {
        var candidates: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["EZPOLL_BINARY"] { candidates.append(explicit) }
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = me.deletingLastPathComponent()
        for _ in 0..<4 { // the test executable may sit inside an .xctest bundle
            candidates.append(directory.appendingPathComponent("ezpoll").path)
            directory = directory.deletingLastPathComponent()
        }
        candidates.append(repository.appendingPathComponent(".build/debug/ezpoll").path)
        guard let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw PackagingError(message: "no built ezpoll binary; looked at \(candidates)")
        }
        return found
    }

    /// Runs check_compose.py on a compose file.
    static func checkCompose(_ file: URL) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", testsDirectory.appendingPathComponent("check_compose.py").path, file.path,
                             testsDirectory.appendingPathComponent("compose-spec.json").path, try ezpollBinary()]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}

struct PackagingError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

@Suite("Packaging: version")
struct VersionTests {
    @Test("`ezpoll --version` answers with a version number")
    func version() throws {
        let output = try Packaging.help(["--version"]).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(output.wholeMatch(of: #/\d+\.\d+\.\d+/#) != nil, "got '\(output)'")
    }
}

@Suite("Packaging: configuration that makes no sense is refused")
struct MisconfigurationTests {
    static let cases: [(arguments: [String], withKey: Bool, names: String)] = [
        ([], false, "clientKey"),
        (["--brokers", ""], true, "--brokers"),
        (["--brokers", "localhost:notaport"], true, "--brokers"),
        (["--result-window", "10", "--safety-margin", "20"], true, "--safety-margin"),
        (["--poll-interval", "0"], true, "--poll-interval"),
        (["--rate-limit", "-5"], true, "--rate-limit"),
        (["--rate-limit-scope", "everyone"], true, "--rate-limit-scope"),
        (["--providers-file", "/dev/null"], true, "--providers-file"),
    ]

    @Test("each nonsensical setting exits 64 with one error line that names it, before touching Kafka", arguments: 0..<8)
    func refused(_ index: Int) throws {
        let c = Self.cases[index]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Packaging.ezpollBinary())
        process.arguments = ["run", "--metrics-port", "0"] + c.arguments
        process.environment = c.withKey ? ["EZPOLL_CLIENT_KEY": "k"] : [:]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 64, "\(c.arguments): exit \(process.terminationStatus): \(output)")
        let errors = output.split(separator: "\n").filter { $0.hasPrefix("Error:") }
        #expect(errors.count == 1 && errors[0].contains(c.names), "\(c.arguments): \(output)")
    }
}

@Suite("Packaging: operating ezpoll run")
struct OperationsTests {
    /// Runs `ezpoll run` against a closed port until it logged "pipeline started", then
    /// stops it with SIGTERM; returns what it wrote to standard error.
    static func startAndStop(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Packaging.ezpollBinary())
        process.arguments = ["run", "--metrics-port", "0", "--brokers", "127.0.0.1:9"] + arguments
        process.environment = ["EZPOLL_CLIENT_KEY": "k"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var text = ""
        let deadline = Date().addingTimeInterval(30)
        while !text.contains("pipeline started") && Date() < deadline {
            let chunk = pipe.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        process.terminate()
        text += String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text
    }

    @Test("an in-flight bound the rate limit cannot serve on schedule is lowered, with a startup warning")
    func inFlightMatchesTheBudget() throws {
        let text = try Self.startAndStop(["--max-in-flight", "50000", "--rate-limit", "200", "--poll-interval", "3"])
        #expect(text.contains("holding at most 1200 tasks"), "\(text)")
        #expect(text.contains("maxInFlight=1200"), "\(text)")
    }

    @Test("--log-format json writes one JSON object per line, with millisecond timestamps")
    func jsonLogs() throws {
        let text = try Self.startAndStop(["--log-format", "json"])
        let lines = text.split(separator: "\n").filter { !$0.isEmpty }
        #expect(lines.contains { $0.contains("pipeline started") }, "\(text)")
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            let ts = object?["ts"] as? String ?? ""
            #expect(ts.wholeMatch(of: #/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/#) != nil, "timestamp \(ts)")
            #expect(object?["level"] is String && object?["message"] is String, "\(line)")
        }
    }

    @Test("--kafka-config-file is read, and its consumer. lines reach the consumer (a bad value there is named)")
    func kafkaConfigFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-kafka-\(UUID().uuidString).properties")
        try "# secrets live here\nclient.id=from-file\nconsumer.session.timeout.ms=not-a-number\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Packaging.ezpollBinary())
        process.arguments = ["run", "--metrics-port", "0", "--brokers", "127.0.0.1:9", "--kafka-config-file", file.path]
        process.environment = ["EZPOLL_CLIENT_KEY": "k"]
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("session.timeout.ms"), "\(output)")
    }
}

extension Packaging {
    /// Runs the built ezpoll with these arguments; returns its standard output.
    static func help(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try ezpollBinary())
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }
}
