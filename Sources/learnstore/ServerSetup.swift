import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import LearnStoreTokens

/// What `learnstore serve` runs: one server's configuration, and what it tells the operator once built.
struct ServerSetup {
    var configuration: ServerConfiguration
    var persistence: PersistenceConfiguration
    /// With `--dev`: the key a ready token is printed with.
    var developmentSecret: String?
    /// Whether that key was generated (no key was configured).
    var generatedKey = false
    var portFile: String?

    /// Verifies tokens with `key` alone, in place of the key it generated.
    mutating func useDevelopmentKey(_ key: String) {
        configuration.authentication.hmacSecrets = [key]
        developmentSecret = key
    }

    /// Prints the development token and writes the port file (once the server listens).
    func announce(_ application: LearnStoreApplication, clock: any EngineClock) async throws {
        if let developmentSecret {
            let token = try await TokenMinter(secret: developmentSecret).mint(
                tenantID: "dev", person: UUID16.random(), scopes: [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin],
                issuedAt: clock.now(), lifetimeSeconds: 86_400)
            print("development token (tenant 'dev', all scopes, 24 h):\n\(token)")
            fflush(nil)
        }
        if let portFile {
            Task {
                if let port = try? await application.localAddress.port {
                    try? "\(port)\n".write(toFile: portFile + ".tmp", atomically: false, encoding: .utf8)
                    _ = rename(portFile + ".tmp", portFile)
                }
            }
        }
    }
}
