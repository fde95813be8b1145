import ArgumentParser
import TaskModel

@main
struct EzpollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ezpoll",
        abstract: "Polls captcha task results for task IDs read from Kafka and publishes the outcomes.",
        version: EzpollVersion.string,
        subcommands: [RunCommand.self, DemoCommand.self, SimulateCommand.self, BrokerCommand.self, BenchCommand.self, ReplayCommand.self]
    )
}
