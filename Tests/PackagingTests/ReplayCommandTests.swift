import ArgumentParser
import Foundation
import Poller
import Testing
@testable import ezpoll

/// `ezpoll replay`'s options: the variables `ezpoll run` reads for the same things, the
/// flag before the variable, and a refusal that names the option.
@Suite("Packaging: ezpoll replay's options")
struct ReplayCommandTests {
    func settings(_ arguments: [String], _ env: [String: String] = [:]) throws -> Replayer.Configuration {
        try ReplayCommand.parse(arguments).settings(environment: env)
    }

    @Test("defaults are run's; EZPOLL_* variables set the same things; a flag wins")
    func defaultsAndVariables() throws {
        let plain = try settings([])
        #expect(plain.brokers == RunSettings.defaults.brokers && plain.source == .deadLetters)
        #expect(plain.sourceTopic == RunSettings.defaults.topics.deadLetters && plain.inputTopic == RunSettings.defaults.topics.input)
        #expect(plain.resultWindow == RunSettings.defaults.profile.resultWindow && !plain.dryRun && !plain.force)
        let env = ["EZPOLL_BROKERS": "127.0.0.1:9", "EZPOLL_INPUT_TOPIC": "in", "EZPOLL_DEAD_LETTER_TOPIC": "dlq",
                   "EZPOLL_FAILURES_TOPIC": "failed", "EZPOLL_RESULT_WINDOW": "120", "EZPOLL_KAFKA_CONFIG": "socket.timeout.ms=5000"]
        let fromEnv = try settings([], env)
        #expect(fromEnv.brokers == "127.0.0.1:9" && fromEnv.inputTopic == "in" && fromEnv.sourceTopic == "dlq")
        #expect(fromEnv.resultWindow == .seconds(120))
        #expect(fromEnv.consumerProperties["socket.timeout.ms"] == "5000" && fromEnv.producerProperties["socket.timeout.ms"] == "5000")
        let failures = try settings(["--from", "failures", "--brokers", "127.0.0.1:10", "--input-topic", "x", "--dry-run", "--force"], env)
        #expect(failures.source == .failures && failures.sourceTopic == "failed" && failures.brokers == "127.0.0.1:10")
        #expect(failures.inputTopic == "x" && failures.dryRun && failures.force)
    }

    @Test("filters: repeatable or comma-separated reasons and partitions, RFC 3339 times")
    func filters() throws {
        let chosen = try settings(["--reason", "unknown_provider,invalid_json", "--reason", "not_utf8", "--partition", "0,2",
                                   "--since", "2026-12-04T10:00:00Z", "--until", "2026-12-04T11:00:00Z"]).filter
        #expect(chosen.reasons == ["unknown_provider", "invalid_json", "not_utf8"] && chosen.partitions == [0, 2])
        #expect(chosen.since == Timestamp(rfc3339: "2026-12-04T10:00:00Z") && chosen.until == Timestamp(rfc3339: "2026-12-04T11:00:00Z"))
    }

    @Test("each refusal names its option", arguments: [
        (["--from", "solutions"], "--from"), (["--from", "failures", "--reason", "task_error"], "--reason"),
        (["--reason", "bogus"], "--reason"), (["--partition", "two"], "--partition"), (["--since", "yesterday"], "--since"),
        (["--since", "2026-12-04T11:00:00Z", "--until", "2026-12-04T10:00:00Z"], "--since"), (["--brokers", "nohost"], "--brokers"),
        (["--result-window", "0"], "--result-window"),
    ])
    func refusals(arguments: [String], option: String) {
        #expect {
            try settings(arguments)
        } throws: { error in
            (error as? ValidationError)?.message.contains(option) == true
        }
    }
}
