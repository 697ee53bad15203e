import ArgumentParser
import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTokens

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Tokens.", subcommands: [Mint.self])

    struct Mint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint an HS256 token with the configured secret (--jwt-secret-file, LEARNSTORE_JWT_SECRET, or the --dev key of a data directory).")

        @Option(help: "Tenant id.") var tenant: String
        @Option(help: "The person UUID (sub). Default: a random UUID.") var sub: String?
        @Option(help: "Space-separated scopes (default: records:read records:write outcomes:read outcomes:write admin).") var scope: String?
        @Option(help: "Scope the token to one application (app_id).") var app: String?
        @Option(help: "Lifetime in seconds (default 3600).") var ttl: Int64 = 3600
        @Option(help: "aud claim.") var audience: String?
        @Option(help: "iss claim.") var issuer: String?
        @Option(name: .customLong("jwt-secret-file"), help: "File holding the HS256 secret.") var jwtSecretFile: String?
        @Option(name: .customLong("data-dir"), help: "Use the development key of this data directory (default snapshots).") var dataDir: String?
        @Option(name: .customLong("config"), help: "Config file.") var config: String?

        func run() async throws {
            try await runCLI {
                let settings = try Settings(configFile: config)
                guard CallerIdentity.isValidTenantID(tenant) else { throw CLIError.usage("tenant must be 1-64 of A-Z a-z 0-9 _ - .") }
                let person: UUID16
                if let sub {
                    guard let parsed = UUID16(sub) else { throw CLIError.usage("--sub must be a UUID") }
                    person = parsed
                } else {
                    person = UUID16.random()
                }
                guard ttl > 0 else { throw CLIError.usage("--ttl must be positive") }
                var secret = try KeyFiles.secret(settings: settings, cli: jwtSecretFile)
                if secret == nil {
                    let directory = settings.string("data-dir", dataDir) ?? "snapshots"
                    let path = (directory as NSString).appendingPathComponent("dev-jwt-secret")
                    secret = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                guard let secret else {
                    throw CLIError.usage("no secret: pass --jwt-secret-file FILE or set LEARNSTORE_JWT_SECRET (or run the server once with --dev)")
                }
                let scopes = Scopes(claim: scope ?? "records:read records:write outcomes:read outcomes:write admin")
                let token = try await TokenMinter(secret: secret).mint(
                    tenantID: tenant, person: person, appID: app, scopes: scopes, issuedAt: SystemClock().now(),
                    lifetimeSeconds: ttl, audience: audience, issuer: issuer)
                print(token)
            }
        }
    }
}
