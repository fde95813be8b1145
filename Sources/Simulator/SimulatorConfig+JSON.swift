import Foundation

extension SimulatorConfig {
    /// This configuration with the members of the JSON object `bytes` laid over
    /// it (deep merge: `{"faults":{"http500Probability":0.5}}` changes one knob,
    /// `{"ban":null}` disables the ban rule).
    public func merged(withJSON bytes: [UInt8]) throws -> SimulatorConfig {
        let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self))
        let patch = try JSONSerialization.jsonObject(with: Data(bytes))
        guard var baseObject = base as? [String: Any], let patchObject = patch as? [String: Any] else {
            throw SimulatorError.badConfig("configuration must be a JSON object")
        }
        SimulatorConfig.deepMerge(&baseObject, patchObject)
        let merged = try JSONSerialization.data(withJSONObject: baseObject)
        let config: SimulatorConfig
        do {
            config = try JSONDecoder().decode(SimulatorConfig.self, from: merged)
        } catch {
            throw SimulatorError.badConfig("invalid configuration: \(error)")
        }
        try config.validate()
        return config
    }

    /// Throws `SimulatorError.badConfig` for values the simulator cannot run with.
    public func validate() throws {
        func fail(_ message: String) throws -> Never { throw SimulatorError.badConfig(message) }
        if !(timeScale > 0 && timeScale.isFinite) { try fail("timeScale must be a positive number") }
        if solveTime.min > solveTime.max { try fail("solveTime.min is above solveTime.max") }
        if !(resultWindow >= 0) { try fail("resultWindow must not be negative") }
        let probabilities = [
            ("unsolvableFraction", unsolvableFraction), ("dropProbability", faults.dropProbability),
            ("http500Probability", faults.http500Probability), ("http503Probability", faults.http503Probability),
            ("http429Probability", faults.http429Probability), ("serviceUnavailableProbability", faults.serviceUnavailableProbability),
            ("malformedProbability", faults.malformedProbability), ("truncatedProbability", faults.truncatedProbability),
            ("slowProbability", faults.slowProbability), ("callbacks.lossProbability", callbacks.lossProbability),
            ("callbacks.duplicateProbability", callbacks.duplicateProbability), ("callbacks.forgedProbability", callbacks.forgedProbability),
        ]
        for (name, value) in probabilities where !(0...1).contains(value) {
            try fail("\(name) must be within 0…1")
        }
        if !(callbacks.minDelay >= 0 && callbacks.minDelay <= callbacks.maxDelay) { try fail("callbacks need 0 ≤ minDelay ≤ maxDelay") }
        if let ban, ban.maxErrors < 0 || !(ban.window > 0) || !(ban.duration >= 0) {
            try fail("ban needs maxErrors ≥ 0, window > 0, duration ≥ 0")
        }
    }

    private static func deepMerge(_ base: inout [String: Any], _ patch: [String: Any]) {
        for (key, value) in patch {
            if let patchObject = value as? [String: Any], var baseObject = base[key] as? [String: Any] {
                deepMerge(&baseObject, patchObject)
                base[key] = baseObject
            } else if value is NSNull {
                base.removeValue(forKey: key)
            } else {
                base[key] = value
            }
        }
    }

    /// The configuration as pretty JSON.
    public func jsonBytes() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? Array(encoder.encode(self))) ?? Array("{}".utf8)
    }
}
