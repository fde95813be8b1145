import ArgumentParser
import Foundation
import Testing
@testable import ezpoll

/// README.md's "Configuration reference (`ezpoll run`)" table is written by hand, so it is
/// held against the code: its flags against `ezpoll run`'s options, and each row's
/// variable and default against what `RunSettings.resolve` does with them. Nothing the
/// table says is repeated here; every expectation comes from the code.
@Suite("Packaging: README configuration reference")
struct ConfigurationReferenceTests {
    @Test("the table lists exactly the options of `ezpoll run`, and every variable its help names")
    func sameOptions() throws {
        let table = try ReferenceTable.read()
        let documented = table.compactMap(\.flag)
        #expect(documented.count == Set(documented).count, "a flag has two rows: \(documented)")
        #expect(Set(documented) == Set(RunHelp.options.keys),
                "README only: \(Set(documented).subtracting(RunHelp.options.keys).sorted()); code only: \(Set(RunHelp.options.keys).subtracting(documented).sorted())")
        let named = Set(RunHelp.screen.matches(of: #/\bEZPOLL_[A-Z0-9_]+\b/#).map { String($0.output) })
        let missing = named.subtracting(table.map(\.variable))
        #expect(missing.isEmpty, "README lacks \(missing.sorted())")
    }

    @Test("each row's variable is the one `ezpoll run` reads for its flag, and the one its help names")
    func variables() throws {
        for row in try ReferenceTable.read() {
            guard let flag = row.flag else {
                // No flag (the clientKey): the variable must still be read.
                #expect(Resolved.outcomes(in: Resolved.bases(with: [row.variable: Resolved.probe])) != Resolved.unset,
                        "\(row.variable) changes nothing")
                continue
            }
            guard let option = RunHelp.options[flag] else { continue } // sameOptions names it
            #expect(option.variable == row.variable, "\(flag): the help names \(option.variable ?? "no variable"), the README \(row.variable)")
            let (arguments, value) = option.takesValue ? ([flag, Resolved.probe], Resolved.probe) : ([flag], row.variableValue)
            guard let value else {
                Issue.record("\(flag) is a flag: the README must say what to set \(row.variable) to")
                continue
            }
            let byFlag = Resolved.outcomes(arguments, in: Resolved.bases)
            #expect(byFlag != Resolved.unset, "\(arguments.joined(separator: " ")) changes nothing, so its variable cannot be told apart")
            #expect(Resolved.outcomes(in: Resolved.bases(with: [row.variable: value])) == byFlag,
                    "\(row.variable)=\(value) does not act as \(arguments.joined(separator: " "))")
        }
    }

    @Test("each default the README or the help quotes is what `ezpoll run` uses when the option is not given")
    func defaults() throws {
        for row in try ReferenceTable.read() {
            guard let flag = row.flag, let option = RunHelp.options[flag] else { continue }
            let quoted = row.quotedDefault
            #expect(quoted != nil || option.quotedDefault == nil,
                    "\(flag): the help says default \(option.quotedDefault ?? ""), the README quotes none (\(row.defaultCell))")
            for (source, value, provider) in [("README", quoted?.value, quoted?.provider), ("help", option.quotedDefault, nil)] {
                guard let value else { continue }
                let base = provider.map { ["--provider", $0] } ?? []
                #expect(Resolved.outcomes(base + [flag, value]) == Resolved.outcomes(base),
                        "\(flag): the \(source)'s default \(value)\(provider.map { " (for \($0))" } ?? "") is not what an unset option gives")
            }
        }
    }
}

/// `ezpoll run`'s settings as `run` would use them, for comparing two ways of giving them.
enum Resolved {
    /// A value each option either takes, distinct from every default, or refuses the same
    /// way by flag and by variable: either way the outcome tells the option apart.
    static let probe = "17"

    /// The environments compared in: with a clientKey, so that the settings resolve, and
    /// without, where only the options about the key (`--event-keys-only`) make a difference.
    static let bases: [[String: String]] = [["EZPOLL_CLIENT_KEY": "k"], [:]]
    static func bases(with variables: [String: String]) -> [[String: String]] {
        bases.map { $0.merging(variables) { $1 } }
    }
    /// The outcomes in `bases` with no option given.
    static let unset = outcomes(in: bases)

    /// Everything `RunCommand.run` takes from the settings resolved in each environment, or
    /// the refusal. The arguments are parsed once: argument-parser takes milliseconds.
    static func outcomes(_ arguments: [String] = [], in environments: [[String: String]] = [bases[0]]) -> [String] {
        let options: RunCommand
        do { options = try RunCommand.parse(arguments) } catch {
            return environments.map { _ in "refused: \(RunCommand.message(for: error))" }
        }
        return environments.map { environment in
            do {
                let resolved = try RunSettings.resolve(options, environment: environment)
                return "\(resolved.pipeline) \(resolved.profile) \(resolved.settings.providers.map(\.profile)) \(resolved.settings.clientConfiguration) \(resolved.logLevel) \(resolved.jsonLogs) \(resolved.metricsHost):\(resolved.metricsPort) \(resolved.settings.callbacks) \(resolved.settings.callbackSchedule) \(resolved.settings.callbackRelayTopic ?? "-") \(resolved.warnings)"
            } catch {
                return "refused: \(RunCommand.message(for: error))"
            }
        }
    }
}

/// The options of `ezpoll run`, read from its help screen (hidden ones included: the
/// README must document every option).
enum RunHelp {
    struct Option {
        var takesValue: Bool
        /// The `EZPOLL_*` variable the help's brackets name.
        var variable: String?
        /// The value after "default " in the help's brackets.
        var quotedDefault: String?
    }

    /// `ezpoll run --help`, unwrapped: an option's help stands on its line, or on the next
    /// one when the flag is long.
    static let screen = EzpollCommand.helpMessage(for: RunCommand.self, includeHidden: true, columns: 100_000)

    /// By flag; `--help` and `--version` are argument-parser's own, no settings.
    static let options: [String: Option] = {
        var blocks: [(flag: String, takesValue: Bool, help: String)] = []
        for line in screen.split(separator: "\n").drop(while: { $0 != "OPTIONS:" }).dropFirst() {
            if let match = line.wholeMatch(of: #/  (?:-[a-z], )?(--[a-z0-9-]+)( <[^>]+>)?(.*)/#) {
                blocks.append((String(match.output.1), match.output.2 != nil, String(match.output.3)))
            } else if !blocks.isEmpty {
                blocks[blocks.count - 1].help += line
            }
        }
        var options: [String: Option] = [:]
        for block in blocks where block.flag != "--help" && block.flag != "--version" {
            options[block.flag] = Option(
                takesValue: block.takesValue,
                variable: block.help.firstMatch(of: #/\[(EZPOLL_[A-Z0-9_]+)/#).map { String($0.output.1) },
                quotedDefault: block.help.firstMatch(of: #/\[EZPOLL_[A-Z0-9_]+, default ([^\]\s]+)\]/#).map { String($0.output.1) })
        }
        return options
    }()
}

/// The rows of README.md's configuration reference table.
struct ReferenceTable {
    var flag: String?
    var variable: String
    /// What the README says to set a flag's variable to (`` `EZPOLL_X` (`1`) ``).
    var variableValue: String?
    var defaultCell: String

    static func read() throws -> [ReferenceTable] {
        let readme = try String(contentsOf: Packaging.repository.appendingPathComponent("README.md"), encoding: .utf8)
        guard let section = readme.range(of: "## Configuration reference (`ezpoll run`)") else {
            throw PackagingError(message: "README.md has no configuration reference")
        }
        let lines = readme[section.upperBound...].split(separator: "\n").drop { !$0.hasPrefix("|") }.prefix { $0.hasPrefix("|") }
        let rows = try lines.dropFirst(2).map { line in // the header and its rule
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 4, let variable = codeSpans(cells[1]).first else {
                throw PackagingError(message: "not a row of flag, variable, default, meaning: \(line)")
            }
            return ReferenceTable(flag: codeSpans(cells[0]).first?.split(separator: " ").first.map(String.init),
                                  variable: variable, variableValue: codeSpans(cells[1]).dropFirst().first, defaultCell: cells[2])
        }
        guard rows.count >= 20 else { throw PackagingError(message: "only \(rows.count) rows read") }
        return rows
    }

    /// The value the default cell quotes, and the provider profile it is quoted for: a
    /// lone `` `value` ``, "the profile's (name: value)", or a formula's "(value with the
    /// defaults)". Nil: the cell quotes no value ("none", "off", a description).
    var quotedDefault: (value: String, provider: String?)? {
        if let match = defaultCell.wholeMatch(of: #/`([^`]+)`/#) { return (String(match.output.1), nil) }
        if let match = defaultCell.firstMatch(of: #/the profile's \(([a-z0-9-]+): `?([^`)]+)`?\)/#) {
            return (String(match.output.2), String(match.output.1))
        }
        if let match = defaultCell.firstMatch(of: #/\(([0-9][0-9,.]*) with the defaults\)/#) {
            return (match.output.1.replacingOccurrences(of: ",", with: ""), nil)
        }
        return nil
    }

    private static func codeSpans(_ cell: String) -> [String] {
        cell.matches(of: #/`([^`]+)`/#).map { String($0.output.1) }
    }
}
