import ArgumentParser
import Foundation
import Poller
import TaskAPI

/// `--providers-file`: several providers polled at once, as JSON. Keys stay out of the
/// file: each provider names an environment variable (`clientKeyEnv`) or a file
/// (`clientKeyFile`) that holds its key.
///
/// ```json
/// {"providers": [
///   {"name": "ez-captcha", "clientKeyEnv": "EZ_KEY",
///    "taskTypes": {"ImageToTextTask": {"firstPollDelay": 1, "pollInterval": 1}}},
///   {"name": "capsolver", "apiUrl": "https://api.capsolver.com", "clientKeyFile": "/run/secrets/capsolver"}
/// ]}
/// ```
enum ProvidersFile {
    struct Document: Decodable {
        var providers: [Provider]
    }

    struct Provider: Decodable {
        /// The name events use (`provider`), any case.
        var name: String
        /// The built-in profile to start from (default: `name`).
        var profile: String?
        var apiUrl: String?
        var clientKeyEnv: String?
        var clientKeyFile: String?
        var firstPollDelay: Double?
        var pollInterval: Double?
        var taskTypes: [String: Timing]?
    }

    struct Timing: Decodable {
        var firstPollDelay: Double?
        var pollInterval: Double?
    }

    static func read(_ path: String, environment env: [String: String]) throws -> [PipelineSettings.ProviderSettings] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--providers-file: cannot read '\(path)'")
        }
        let document: Document
        do {
            document = try JSONDecoder().decode(Document.self, from: data)
        } catch {
            throw ValidationError("--providers-file: '\(path)' is not a providers document: \(error)")
        }
        guard !document.providers.isEmpty else { throw ValidationError("--providers-file: '\(path)' names no provider") }
        var seen = Set<String>()
        return try document.providers.map { provider in
            let name = provider.name.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, seen.insert(name.lowercased()).inserted else {
                throw ValidationError("--providers-file: provider names must be present and unique ('\(provider.name)')")
            }
            let base = provider.profile ?? name
            guard var profile = ProviderProfile.named(base) else {
                throw ValidationError("--providers-file: unknown profile '\(base)' for '\(name)'; known: \(ProviderProfile.builtins.map(\.name).joined(separator: ", "))")
            }
            profile.name = name
            if let url = provider.apiUrl { profile = profile.with(baseURL: url) }
            let timings = [provider.firstPollDelay, provider.pollInterval]
                + (provider.taskTypes ?? [:]).values.flatMap { [$0.firstPollDelay, $0.pollInterval] }
            guard timings.allSatisfy({ $0.map { $0 >= 0 && $0.isFinite } ?? true }),
                  ([provider.pollInterval] + (provider.taskTypes ?? [:]).values.map(\.pollInterval)).allSatisfy({ ($0 ?? 1) > 0 }) else {
                throw ValidationError("--providers-file: '\(name)': firstPollDelay must be >= 0 and pollInterval > 0 seconds")
            }
            var settings = PipelineSettings.ProviderSettings(profile: profile, clientKey: try key(provider, name: name, environment: env))
            settings.firstPollDelay = provider.firstPollDelay.map { .seconds($0) }
            settings.pollInterval = provider.pollInterval.map { .seconds($0) }
            settings.taskTypes = (provider.taskTypes ?? [:]).mapValues {
                PipelineSettings.ProviderSettings.Timing(firstPollDelay: $0.firstPollDelay.map { .seconds($0) },
                                                         pollInterval: $0.pollInterval.map { .seconds($0) })
            }
            return settings
        }
    }

    private static func key(_ provider: Provider, name: String, environment env: [String: String]) throws -> ClientKey? {
        if let file = provider.clientKeyFile { return try RunSettings.clientKey(file: file, environment: [:]) }
        guard let variable = provider.clientKeyEnv else { return nil }
        guard let value = env[variable]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
            throw ValidationError("--providers-file: '\(name)' takes its key from \(variable), which is not set")
        }
        return ClientKey(value)
    }
}
