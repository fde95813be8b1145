import Foundation

extension SimulatorConfig {
    /// This configuration with the members of the JSON object `bytes` laid over
    /// it (deep merge: `{"faults":{"http500Probability":0.5}}` changes one knob,
    /// `{"ban":null}` disables the ban rule).
    public func merged(withJSON bytes: [UInt8]) throws -> SimulatorConfig {
        let base = try JSONSerialization.jsonObject(with: JSONEncoder().encode(self))
        let patch = try JSONSerialization.jsonObject(with: Data(bytes))
        guard var baseObject = base as? [String: Any], let patchObject = patch as? [String: Any] else {
            throw SimulatorError(.badConfig, "configuration must be a JSON object")
        }
        SimulatorConfig.deepMerge(&baseObject, patchObject)
        let merged = try JSONSerialization.data(withJSONObject: baseObject)
        do {
            return try JSONDecoder().decode(SimulatorConfig.self, from: merged)
        } catch {
            throw SimulatorError(.badConfig, "invalid configuration: \(error)")
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
