import Poller
import TaskAPI
import Testing

/// How settings resolve into the engine's configuration, without I/O.
@Suite("Pipeline settings")
struct PipelineSettingsTests {
    /// The in-flight bound is what the call budget polls on schedule at the shortest
    /// interval any provider or task type uses, not the default profile's interval.
    @Test func theInFlightBoundFollowsTheShortestIntervalInUse() {
        var settings = PipelineSettings(profile: .ezCaptcha, brokers: "127.0.0.1:9092")
        settings.rateLimit = 100
        settings.pollInterval = .seconds(3)
        #expect(settings.budgetedInFlight == 600, "2 x 100/s x 3 s")
        #expect(settings.configuration.engine.maxInFlight == 600)

        var capsolver = PipelineSettings.ProviderSettings(profile: .capsolver)
        capsolver.taskTypes["ImageToTextTask"] = .init(pollInterval: .milliseconds(500))
        settings.providers = [PipelineSettings.ProviderSettings(profile: .ezCaptcha), capsolver]
        #expect(settings.shortestPollInterval == .milliseconds(500))
        #expect(settings.budgetedInFlight == 100, "2 x 100/s x 0.5 s")
        #expect(settings.configuration.engine.maxInFlight == 100)

        settings.maxInFlight = 5_000
        #expect(settings.configuration.engine.maxInFlight == 100, "a larger bound is lowered to what the budget polls")
        #expect(settings.warnings.count == 1)
        #expect(settings.warnings.first?.contains("every 0.5 s") == true, "\(settings.warnings)")
    }
}
