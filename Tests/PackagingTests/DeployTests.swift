import Foundation
import Testing

/// deploy/ezpoll.yaml and deploy/prometheus-rules.yaml cannot meet a cluster here, so they
/// are checked statically by check_deploy.py: the manifests against the Kubernetes schemas
/// bundled in the kubernetes-validate package, the properties ezpoll needs (probes, the
/// clientKey as a Secret file, graceful stop, PDB, resources, security), and the rules with
/// `promtool check rules` and `promtool test rules`. scripts/setup.sh installs both tools.
@Suite("Packaging: Kubernetes manifests and Prometheus rules")
struct DeployTests {
    @Test("deploy/ezpoll.yaml and deploy/prometheus-rules.yaml pass check_deploy.py")
    func deployFilesAreValid() throws {
        let result = try Packaging.checkDeploy()
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("deploy OK"), "\(result.output)")
    }

    @Test("the checker rejects broken manifests and rules, naming the problem", arguments: BrokenDeploy.allCases)
    func rejectsBrokenDeploy(_ broken: BrokenDeploy) throws {
        let original = try String(contentsOf: Packaging.repository.appendingPathComponent(broken.file), encoding: .utf8)
        let mutated = broken.apply(to: original)
        #expect(mutated != original, "the mutation \(broken) must change \(broken.file)")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("ezpoll-deploy-\(UUID().uuidString).yaml")
        try mutated.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let option = ["deploy/ezpoll.yaml": "--manifests", "deploy/keda-scaledobject.yaml": "--scaledobject",
                      "deploy/grafana-dashboard.json": "--dashboard"][broken.file] ?? "--rules"
        let result = try Packaging.checkDeploy([option, file.path])
        #expect(result.status == 1, "\(broken) must be rejected: \(result.output)")
        #expect(result.output.contains(broken.expectedMessage), "\(broken): \(result.output)")
    }
}

/// Ways to break the deploy files; each must be caught with its message.
enum BrokenDeploy: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case schemaViolation
    case unknownField
    case clientKeyInEnvironment
    case clientKeyFileNotFromSecret
    case livenessPath
    case readinessPath
    case shortGracePeriod
    case noDisruptionBudget
    case noLimits
    case unknownVariable
    case flagOnRun
    case unknownMetric
    case scaledObjectForAnotherGroup
    case lagThresholdBelowTheInFlightBound
    case scaleDownFasterThanATask
    case misspeltScaledObjectField
    case numericTriggerMetadata
    case unknownMetricOnTheDashboard
    case unparsableDashboardQuery

    var testDescription: String { rawValue }

    var file: String {
        switch self {
        case .unknownMetric: return "deploy/prometheus-rules.yaml"
        case .scaledObjectForAnotherGroup, .lagThresholdBelowTheInFlightBound, .scaleDownFasterThanATask,
             .misspeltScaledObjectField, .numericTriggerMetadata:
            return "deploy/keda-scaledobject.yaml"
        case .unknownMetricOnTheDashboard, .unparsableDashboardQuery: return "deploy/grafana-dashboard.json"
        default: return "deploy/ezpoll.yaml"
        }
    }

    func apply(to text: String) -> String {
        switch self {
        case .schemaViolation:
            return text.replacingOccurrences(of: "replicas: 3", with: "replicas: three")
        case .unknownField:
            return text.replacingOccurrences(of: "terminationGracePeriodSeconds: 30", with: "terminationGracePeriod: 30")
        case .clientKeyInEnvironment:
            return text.replacingOccurrences(
                of: "            - name: EZPOLL_CLIENT_KEY_FILE\n",
                with: "            - name: EZPOLL_CLIENT_KEY\n              value: literal-key\n            - name: EZPOLL_CLIENT_KEY_FILE\n")
        case .clientKeyFileNotFromSecret:
            return text.replacingOccurrences(of: "value: /etc/ezpoll/client-key/client-key", with: "value: /tmp/client-key")
        case .livenessPath:
            return text.replacingOccurrences(of: "path: /health/live", with: "path: /healthz")
        case .readinessPath:
            return text.replacingOccurrences(of: "path: /health/ready", with: "path: /health/live")
        case .shortGracePeriod:
            return text.replacingOccurrences(of: "terminationGracePeriodSeconds: 30", with: "terminationGracePeriodSeconds: 5")
        case .noDisruptionBudget:
            // Drop the whole PodDisruptionBudget document.
            var documents = text.components(separatedBy: "\n---\n")
            documents.removeAll { $0.contains("kind: PodDisruptionBudget") }
            return documents.joined(separator: "\n---\n")
        case .noLimits:
            return text.replacingOccurrences(of: "            limits:\n              cpu: \"1\"\n              memory: 1Gi\n", with: "")
        case .unknownVariable:
            return text.replacingOccurrences(of: "  EZPOLL_LOG_LEVEL: \"info\"\n",
                                             with: "  EZPOLL_LOG_LEVEL: \"info\"\n  EZPOLL_NO_SUCH_SETTING: \"1\"\n")
        case .flagOnRun:
            return text.replacingOccurrences(of: #"args: ["run"]"#, with: #"args: ["run", "--brokers", "kafka:9092"]"#)
        case .unknownMetric:
            return text.replacingOccurrences(of: "expr: ezpoll_poll_slowdown_factor > 1", with: "expr: ezpoll_poll_slowdown > 1")
        case .scaledObjectForAnotherGroup:
            return text.replacingOccurrences(of: "consumerGroup: ezpoll", with: "consumerGroup: ezpoll-old")
        case .lagThresholdBelowTheInFlightBound:
            return text.replacingOccurrences(of: #"lagThreshold: "1200""#, with: #"lagThreshold: "100""#)
        case .scaleDownFasterThanATask:
            return text.replacingOccurrences(of: "stabilizationWindowSeconds: 360", with: "stabilizationWindowSeconds: 60")
        case .misspeltScaledObjectField:
            // KEDA's API server would drop the field and poll every 30 s by default.
            return text.replacingOccurrences(of: "pollingInterval: 30", with: "pollingIntervalSeconds: 15")
        case .numericTriggerMetadata:
            // Trigger metadata is a map of strings in KEDA's CRD: an unquoted number is refused.
            return text.replacingOccurrences(of: #"lagThreshold: "1200""#, with: "lagThreshold: 1200")
        case .unknownMetricOnTheDashboard:
            return text.replacingOccurrences(of: "ezpoll_polls_total{", with: "ezpoll_poll_total{")
        case .unparsableDashboardQuery:
            return text.replacingOccurrences(of: "sum by (outcome) (rate(", with: "sum by (outcome (rate(")
        }
    }

    var expectedMessage: String {
        switch self {
        case .schemaViolation: return "schema: Deployment/ezpoll: spec.replicas"
        case .unknownField: return "schema: Deployment/ezpoll: spec.template.spec"
        case .clientKeyInEnvironment: return "EZPOLL_CLIENT_KEY is set in the environment"
        case .clientKeyFileNotFromSecret: return "/tmp/client-key is in volume tmp, which is not a secret volume"
        case .livenessPath: return "livenessProbe must be httpGet /health/live"
        case .readinessPath: return "readinessProbe must be httpGet /health/ready"
        case .shortGracePeriod: return "terminationGracePeriodSeconds 5 must exceed the drain timeout"
        case .noDisruptionBudget: return "expected one PodDisruptionBudget"
        case .noLimits: return "resources must set limits.cpu, limits.memory"
        case .unknownVariable: return "reads no variable EZPOLL_NO_SUCH_SETTING"
        case .flagOnRun: return "configured through EZPOLL_* variables only"
        case .unknownMetric: return "metric ezpoll_poll_slowdown does not exist"
        case .scaledObjectForAnotherGroup: return "trigger consumerGroup 'ezpoll-old' is not EZPOLL_GROUP_ID 'ezpoll'"
        case .lagThresholdBelowTheInFlightBound: return "lagThreshold 100 is below the group's in-flight bound 1200"
        case .scaleDownFasterThanATask: return "stabilizationWindowSeconds 60 must exceed the drain timeout"
        case .misspeltScaledObjectField: return "scaledobject schema: spec: Additional properties are not allowed ('pollingIntervalSeconds' was unexpected)"
        case .numericTriggerMetadata: return "scaledobject schema: spec.triggers.0.metadata.lagThreshold: 1200 is not of type 'string'"
        case .unknownMetricOnTheDashboard: return "dashboard: metric ezpoll_poll_total does not exist"
        case .unparsableDashboardQuery: return "dashboard: a query does not parse"
        }
    }
}

extension Packaging {
    /// Runs `python3 Tests/PackagingTests/check_deploy.py [arguments]` from the repository root.
    static func checkDeploy(_ arguments: [String] = []) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "Tests/PackagingTests/check_deploy.py"] + arguments
        process.currentDirectoryURL = repository
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }
}
