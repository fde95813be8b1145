import Foundation
@testable import Poller
import TaskModel
import Testing

/// What a solution says beyond the token: when it expires (lifetimes by task type, from
/// when the answer was first seen ready, and what is left of it when it goes out), and
/// what the provider's answer said the solve cost and took.
@Suite("Token lifetimes and solve receipts")
struct SolutionTelemetryTests {
    @Test func theDefaultsKnowRecaptchaHcaptchaAndTurnstileInAnySpelling() {
        let standard = TokenLifetimes.standard
        for taskType in ["ReCaptchaV2TaskProxyless", "RecaptchaV3TaskProxyless", "RecaptchaV2EnterpriseTask", "NoCaptchaTaskProxyless_recaptcha"] {
            #expect(standard.lifetime(taskType: taskType) == .seconds(120), "\(taskType)")
        }
        #expect(standard.lifetime(taskType: "HCaptchaTaskProxyless") == .seconds(120))
        #expect(standard.lifetime(taskType: "AntiTurnstileTaskProxyLess") == .seconds(300))
        #expect(standard.lifetime(taskType: "TurnstileTask") == .seconds(300))
        #expect(standard.lifetime(taskType: "ImageToTextTask") == nil, "an image captcha's text does not expire")
        #expect(standard.lifetime(taskType: nil) == nil)
        #expect(standard.lifetime(taskType: "") == nil)
    }

    @Test func yourRulesComeFirstAndReplaceADefaultOfTheSameText() {
        let mine = TokenLifetimes([.init("RecaptchaV3", .seconds(90)), .init("turnstile", .seconds(280))])
        let lifetimes = mine.overriding(.standard)
        #expect(lifetimes.lifetime(taskType: "RecaptchaV3TaskProxyless") == .seconds(90))
        #expect(lifetimes.lifetime(taskType: "ReCaptchaV2TaskProxyless") == .seconds(120), "the default still holds for v2")
        #expect(lifetimes.lifetime(taskType: "TurnstileTask") == .seconds(280))
        #expect(lifetimes.rules.filter { $0.match == "turnstile" }.count == 1)
    }

    @Test func aSolutionExpiresItsTaskTypesLifetimeAfterItWasSeenReady() throws {
        var h = EngineHarness(configuration: config())
        h.script["re"] = [.processing, solved]
        h.script["img"] = [solved]
        h.receive(#"{"taskId":"re","taskType":"RecaptchaV2TaskProxyless"}"#)
        h.receive(#"{"taskId":"img","taskType":"ImageToTextTask"}"#)
        h.runToCompletion()
        let re = try #require(h.solutions["re"])
        #expect(re.expiresAt == re.resolvedAt + .seconds(120))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(re.jsonBytes())) as? [String: Any])
        #expect(object["expiresAt"] as? String == (re.resolvedAt + .seconds(120)).rfc3339)
        let img = try #require(h.solutions["img"])
        #expect(img.expiresAt == nil)
        #expect(!String(decoding: img.jsonBytes(), as: UTF8.self).contains("expiresAt"))
    }

    @Test func eachProviderUsesItsOwnLifetimesOnTheSimulatedClock() {
        var settings = PipelineSettings(profile: .ezCaptcha, brokers: "127.0.0.1:9092")
        settings.timeScale = 10
        var capsolver = PipelineSettings.ProviderSettings(profile: .capsolver)
        capsolver.profile.tokenLifetimes = TokenLifetimes([.init("turnstile", .seconds(200))]).overriding(.standard)
        settings.providers = [PipelineSettings.ProviderSettings(profile: .ezCaptcha), capsolver]
        let routes = settings.configuration.engine.providers
        #expect(routes.first { $0.name == "ez-captcha" }?.tokenLifetimes.lifetime(taskType: "TurnstileTask") == .seconds(30))
        #expect(routes.first { $0.name == "capsolver" }?.tokenLifetimes.lifetime(taskType: "TurnstileTask") == .seconds(20))
        settings.providers = []
        #expect(settings.configuration.engine.tokenLifetimes.lifetime(taskType: "RecaptchaV2Task") == .seconds(12))
    }

    @Test func publishedSolutionsShowTheLifeLeftAndCountTheDeadOnes() {
        let metrics = PipelineMetrics()
        let now = t(1_000)
        metrics.solutionPublished(expiresAt: now + .seconds(100), now: now)
        metrics.solutionPublished(expiresAt: now - .seconds(1), now: now)
        metrics.solutionPublished(expiresAt: nil, now: now)
        let text = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        #expect(text[PipelineMetrics.Name.expiredSolutions] == 1)
        #expect(text[PipelineMetrics.Name.tokenLifeLeft + "_count"] == 2, "no lifetime, no sample")
        #expect(text[PipelineMetrics.Name.tokenLifeLeft + "_bucket", ["le": "1.0"]] == 1, "the dead one counts as 0 s left")
        #expect(text[PipelineMetrics.Name.tokenLifeLeft + "_bucket", ["le": "110.0"]] == 2)
    }

    @Test func aSolutionCarriesTheReceiptOfItsAnswerAndTheMetricsAddItUp() throws {
        var h = EngineHarness(configuration: config())
        let receipt = SolveReceipt(cost: "0.001500", createTime: 1472205564, endTime: 1472205570, solveCount: 1)
        h.script["paid"] = [.processing, .ready(solution: RawJSON(unchecked: Array(#"{"token":"t"}"#.utf8)), receipt: receipt)]
        h.script["free"] = [solved]
        h.receive(#"{"taskId":"paid","taskType":"ImageToTextTask"}"#)
        h.receive(#"{"taskId":"free"}"#)
        h.runToCompletion()
        let paid = try #require(h.solutions["paid"])
        #expect(paid.receipt == receipt)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(paid.jsonBytes())) as? [String: Any])
        #expect(object["cost"] as? String == "0.001500", "the price as text: no digit lost")
        #expect(object["providerSolveSeconds"] as? Int == 6)
        #expect(object["solveCount"] as? Int == 1)
        let free = try #require(h.solutions["free"])
        #expect(free.receipt == nil)
        let text = String(decoding: free.jsonBytes(), as: UTF8.self)
        #expect(!text.contains("cost") && !text.contains("providerSolveSeconds") && !text.contains("solveCount"))

        let metrics = PipelineMetrics()
        metrics.taskEnded(provider: "anti-captcha", taskType: "ImageToTextTask", polls: 2, receipt: receipt)
        metrics.taskEnded(provider: "anti-captcha", taskType: "ImageToTextTask", polls: 3, receipt: receipt)
        metrics.taskEnded(provider: "anti-captcha", taskType: nil, polls: 4, receipt: nil)
        let exposition = PrometheusText(String(decoding: metrics.exposition(), as: UTF8.self))
        let labels = ["provider": "anti-captcha", "task_type": "ImageToTextTask"]
        #expect(abs((exposition[PipelineMetrics.Name.spend, labels] ?? 0) - 0.003) < 1e-9)
        #expect(exposition[PipelineMetrics.Name.pollsPerTask + "_count", labels] == 2)
        #expect(exposition[PipelineMetrics.Name.pollsPerTask + "_sum", labels] == 5)
        #expect(exposition[PipelineMetrics.Name.pollsPerTask + "_count", ["provider": "anti-captcha", "task_type": "none"]] == 1)
        #expect(exposition[PipelineMetrics.Name.providerSolveTime + "_count", ["provider": "anti-captcha"]] == 2)
        #expect(exposition[PipelineMetrics.Name.providerSolveTime + "_bucket", ["provider": "anti-captcha", "le": "5.0"]] == 0)
        #expect(exposition[PipelineMetrics.Name.providerSolveTime + "_bucket", ["provider": "anti-captcha", "le": "10.0"]] == 2)
    }

    @Test func freeFormTaskTypesCannotGrowTheLabelsWithoutEnd() {
        var seen: Set<String> = []
        let labels = (0..<100).map { PipelineMetrics.taskTypeLabel("Type\($0)", seen: &seen) }
        #expect(Set(labels).count == PipelineMetrics.maxTaskTypeLabels + 1)
        #expect(labels.last == "other")
        #expect(PipelineMetrics.taskTypeLabel("Type0", seen: &seen) == "Type0", "a known one keeps its label")
        #expect(PipelineMetrics.taskTypeLabel(nil, seen: &seen) == "none")
    }
}
