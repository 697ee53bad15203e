import Foundation
import LearnStoreModel

/// Resolves a setting from, in order: the command line, the environment (`LEARNSTORE_` + the flag
/// name in upper case with `-` as `_`, e.g. `--jwt-secret-file` → `LEARNSTORE_JWT_SECRET_FILE`), the
/// config file (`name = value` lines, `#` comments), then the built-in default.
struct Settings {
    let environment: [String: String]
    let file: [String: String]
    let filePath: String?

    init(configFile: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.environment = environment
        let path = configFile ?? environment["LEARNSTORE_CONFIG"]
        self.filePath = path
        guard let path else {
            file = [:]
            return
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CLIError.usage("cannot read config file \(path)")
        }
        var values: [String: String] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0].trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty else {
                throw CLIError.usage("\(path):\(number + 1): expected 'name = value'")
            }
            var value = parts[1]
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            values[parts[0].replacingOccurrences(of: "_", with: "-")] = value
        }
        file = values
    }

    /// The settings of `configFile` over those of `base`: a value in the file replaces the base's.
    init(configFile: String, over base: Settings) throws {
        let own = try Settings(configFile: configFile, environment: base.environment)
        environment = base.environment
        file = base.file.merging(own.file) { _, mine in mine }
        filePath = configFile
    }

    static func environmentName(_ flag: String) -> String {
        "LEARNSTORE_" + flag.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    func string(_ flag: String, _ cli: String?) -> String? {
        cli ?? environment[Self.environmentName(flag)] ?? file[flag]
    }

    func int(_ flag: String, _ cli: Int?, default value: Int) throws -> Int {
        if let cli { return cli }
        guard let text = string(flag, nil) else { return value }
        guard let parsed = Int(text) else { throw CLIError.usage("\(flag) must be a whole number, got '\(text)'") }
        return parsed
    }

    func double(_ flag: String, _ cli: Double?, default value: Double) throws -> Double {
        if let cli { return cli }
        guard let text = string(flag, nil) else { return value }
        guard let parsed = Double(text), parsed.isFinite else { throw CLIError.usage("\(flag) must be a number, got '\(text)'") }
        return parsed
    }

    func bool(_ flag: String, _ cli: Bool) throws -> Bool {
        if cli { return true }
        guard let text = string(flag, nil)?.lowercased() else { return false }
        switch text {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off", "": return false
        default: throw CLIError.usage("\(flag) must be true or false, got '\(text)'")
        }
    }
}

/// A failure the CLI reports with a message and an exit code.
enum CLIError: Error, CustomStringConvertible {
    case usage(String)
    case server(LearnStoreError)
    case failed(String)
    /// The change feed no longer keeps the changes asked for.
    case truncated(String)

    var description: String {
        switch self {
        case .usage(let message): "error: \(message)"
        case .server(let error): "error: \(error)"
        case .failed(let message): "error: \(message)"
        case .truncated(let message): "error: FEED_TRUNCATED: \(message)"
        }
    }

    /// 2 usage, 3 cannot connect, 4 authentication, 7 change feed truncated (`feed`), 1 anything else.
    var exitCode: Int32 {
        switch self {
        case .usage: 2
        case .server(let error):
            switch error.code {
            case .connectionFailed: 3
            case .unauthenticated, .tokenExpired, .forbidden: 4
            default: 1
            }
        case .failed: 1
        case .truncated: 7
        }
    }
}
