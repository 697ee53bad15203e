import ArgumentParser
import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import LearnStoreTokens
import Logging
import Metrics

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the LearnStore server.",
        discussion: """
            A key is required to verify tokens: --jwt-secret-file (HS256) and/or --jwks-file (RS256/ES256 \
            public keys). With --dev and no key, a random HS256 key is generated once, kept in \
            <data-dir>/dev-jwt-secret, and a ready admin token is printed.
            """)

    @Option(help: "Address to listen on (default 127.0.0.1).") var host: String?
    @Option(help: "TCP port (default 7878; 0 picks a free port).") var port: Int?
    @Option(name: .customLong("data-dir"), help: "Data directory for the WAL and snapshots (default snapshots).") var dataDir: String?
    @Option(name: .customLong("event-loops"), help: "Event loop threads (default: one per core).") var eventLoops: Int?
    @Option(name: .customLong("max-frame-bytes"), help: "Largest accepted frame (default 16777216).") var maxFrameBytes: Int?
    @Option(name: .customLong("max-in-flight"), help: "Requests in flight per connection before reading pauses (default 1024).") var maxInFlight: Int?
    @Option(name: .customLong("max-connections"), help: "Connection limit (default 10000).") var maxConnections: Int?
    @Option(name: .customLong("handshake-max-frame-bytes"), help: "Largest frame accepted before AUTH succeeds (default 16384).") var handshakeMaxFrameBytes: Int?
    @Option(name: .customLong("output-soft-limit"), help: "Unread response bytes per connection at which its requests pause until the client reads (default 4194304).") var outputSoftLimit: Int?
    @Option(name: .customLong("output-hard-limit"), help: "Unread response bytes per connection past which it is closed with OVERLOADED (default 67108864).") var outputHardLimit: Int?
    @Option(name: .customLong("output-budget"), help: "Unread response bytes over all connections at which every connection pauses (default 268435456).") var outputBudget: Int?
    @Option(name: .customLong("input-allowance"), help: "Request bytes a connection may buffer without drawing on the input budget (default 65536).") var inputAllowance: Int?
    @Option(name: .customLong("input-budget"), help: "Request bytes buffered beyond the allowances over all connections; past it a connection is closed with OVERLOADED (default 268435456).") var inputBudget: Int?
    @Option(name: .customLong("handshake-timeout"), help: "Seconds to complete HELLO and AUTH (default 10).") var handshakeTimeout: Double?
    @Option(name: .customLong("idle-timeout"), help: "Seconds without a request before a connection is closed (default 300).") var idleTimeout: Double?
    @Option(name: .customLong("ack-timeout"), help: "Seconds a reply waits for its write's acknowledgement (in-sync replicas, the disk) before it is answered OUTCOME_UNKNOWN; 0 waits for ever (default 30).") var ackTimeout: Double?
    @Option(name: .customLong("metrics-port"), help: "Port of the Prometheus /metrics endpoint on 127.0.0.1 (default 9464; 0 disables).") var metricsPort: Int?
    @Option(name: .customLong("jwt-secret-file"), help: "File holding an HS256 secret (env LEARNSTORE_JWT_SECRET may hold the secret itself).") var jwtSecretFile: String?
    @Option(name: .customLong("jwks-file"), help: "JWKS file with RS256/ES256 public keys.") var jwksFile: String?
    @Option(name: .customLong("jwt-audience"), help: "Require this aud claim.") var jwtAudience: String?
    @Option(name: .customLong("jwt-issuer"), help: "Require this iss claim.") var jwtIssuer: String?
    @Option(name: .customLong("jwt-leeway"), help: "Seconds of clock skew tolerated on exp, nbf and iat (0...86400, default 30).") var jwtLeeway: Int?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (default info).") var logLevel: String?
    @Option(help: "When a write counts as durable: always (fdatasync before the reply, group commit; the default), everysec, off.") var fsync: String?
    @Option(name: .customLong("snapshot-interval"), help: "Seconds between snapshot rounds (default 3600; 0 disables).") var snapshotInterval: Double?
    @Option(name: .customLong("snapshot-wal-bytes"), help: "Take a snapshot round after this many WAL bytes (default 536870912; 0 disables).") var snapshotWALBytes: Int?
    @Option(name: .customLong("snapshot-level"), help: "zstd level of snapshots (default 1).") var snapshotLevel: Int?
    @Option(name: .customLong("snapshots-kept"), help: "Snapshots kept per tenant (default 2).") var snapshotsKept: Int?
    @Option(name: .customLong("wal-segment-bytes"), help: "WAL segment size (default 67108864).") var walSegmentBytes: Int?
    @Option(name: .customLong("feed-retention"), help: "Seconds of WAL kept for change-feed subscribers to resume from, whatever the snapshots cover (default 3600; 0 keeps only what snapshots need).") var feedRetention: Double?
    @Option(name: .customLong("feed-retention-bytes"), help: "At most this many WAL bytes kept for change-feed subscribers (default 1073741824).") var feedRetentionBytes: Int?
    @Option(name: .customLong("feed-max-subscriptions"), help: "Change-feed subscriptions on the whole server (default 256).") var feedMaxSubscriptions: Int?
    @Option(name: .customLong("feed-max-subscriptions-per-tenant"), help: "Change-feed subscriptions per tenant (default 16).") var feedMaxSubscriptionsPerTenant: Int?
    @Option(name: .customLong("feed-memory-records"), help: "Newest records of each followed tenant kept in memory for its caught-up subscribers (default 4096; 0: they read the WAL files).") var feedMemoryRecords: Int?
    @Option(name: .customLong("port-file"), help: "Write the port actually bound (useful with --port 0) to this file.") var portFile: String?
    @Flag(name: .customLong("force-recovery"), help: "Start even if the WAL or a snapshot is damaged before its tail, skipping the damage (logged).") var forceRecovery = false
    @Option(name: .customLong("config"), help: "Config file of 'name = value' lines.") var config: String?
    @Flag(name: .customLong("dev"), help: "Development mode: generate a key if none is configured and print a token.") var dev = false
    @OptionGroup(title: "Replication") var replication: ReplicationOptions

    @Option(name: .customLong("member"), help: "Run the server a config file describes ('name = value' lines, as --config) as one member of this process; repeat it to run several (nodes of different groups of a partitioned cluster, each with its own ports and data directory) on one set of event loops. A member's file overrides --config; command-line options apply to every member.") var memberFiles: [String] = []

    func run() async throws {
        try await runCLI {
            let settings = try Settings(configFile: config)
            let level = Logger.Level(rawValue: settings.string("log-level", logLevel) ?? "info") ?? .info
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "learnstore")
            if !memberFiles.isEmpty {
                var members = try memberFiles.map { file in ServeMembers.Member(file: file, setup: try serverSetup(Settings(configFile: file, over: settings))) }
                // With --dev and no key, every member verifies the first one's generated key, so a
                // token works on each (as nodes of one cluster must share their keys).
                if let key = members.first(where: \.setup.generatedKey)?.setup.developmentSecret {
                    for index in members.indices where members[index].setup.generatedKey { members[index].setup.useDevelopmentKey(key) }
                }
                let eventLoops = max(1, try settings.int("event-loops", eventLoops, default: ServerConfiguration().eventLoops))
                try await ServeMembers(members, eventLoops: eventLoops, logger: logger).run()
                return
            }
            let setup = try serverSetup(settings)
            let clock = SystemClock()
            let application = try await LearnStoreApplication(
                configuration: setup.configuration, persistence: setup.persistence, clock: clock, logger: logger, stopsOnSignals: true)
            MetricsSystem.bootstrap(application.metricsFactory)
            try await setup.announce(application, clock: clock)
            do {
                try await application.run()
            } catch let restart as NodeRestartRequested {
                // The same binary and arguments, in place (the process keeps its pid for a supervisor).
                logger.notice("starting again", metadata: ["reason": "\(restart.reason)"])
                fflush(nil)
                try await Task.sleep(for: .seconds(1))
                let arguments = CommandLine.arguments.map { strdup($0) } + [nil]
                execv("/proc/self/exe", arguments)
                throw CLIError.failed("could not start again (execv: errno \(errno)); start the node again by hand")
            } catch {
                throw CLIError.failed("\(error)")
            }
        }
    }

    /// One server's configuration from its settings (the command line over the environment over the
    /// config file), checked; its data directory is created.
    func serverSetup(_ settings: Settings) throws -> ServerSetup {
        var configuration = ServerConfiguration()
        configuration.host = settings.string("host", host) ?? configuration.host
        configuration.port = try settings.int("port", port, default: configuration.port)
        configuration.dataDirectory = settings.string("data-dir", dataDir) ?? configuration.dataDirectory
        configuration.eventLoops = max(1, try settings.int("event-loops", eventLoops, default: configuration.eventLoops))
        configuration.maximumFrameBytes = try settings.int("max-frame-bytes", maxFrameBytes, default: configuration.maximumFrameBytes)
        configuration.maximumInFlight = try settings.int("max-in-flight", maxInFlight, default: configuration.maximumInFlight)
        configuration.maximumConnections = try settings.int("max-connections", maxConnections, default: configuration.maximumConnections)
        configuration.handshakeTimeoutSeconds = try settings.double("handshake-timeout", handshakeTimeout, default: configuration.handshakeTimeoutSeconds)
        configuration.idleTimeoutSeconds = try settings.double("idle-timeout", idleTimeout, default: configuration.idleTimeoutSeconds)
        configuration.acknowledgementTimeoutSeconds = try settings.double("ack-timeout", ackTimeout, default: configuration.acknowledgementTimeoutSeconds)
        configuration.maximumHandshakeFrameBytes = try settings.int("handshake-max-frame-bytes", handshakeMaxFrameBytes, default: configuration.maximumHandshakeFrameBytes)
        configuration.connectionOutputSoftLimitBytes = try settings.int("output-soft-limit", outputSoftLimit, default: configuration.connectionOutputSoftLimitBytes)
        configuration.connectionOutputHardLimitBytes = try settings.int("output-hard-limit", outputHardLimit, default: configuration.connectionOutputHardLimitBytes)
        configuration.serverOutputBudgetBytes = try settings.int("output-budget", outputBudget, default: configuration.serverOutputBudgetBytes)
        configuration.connectionInputAllowanceBytes = try settings.int("input-allowance", inputAllowance, default: configuration.connectionInputAllowanceBytes)
        configuration.serverInputBudgetBytes = try settings.int("input-budget", inputBudget, default: configuration.serverInputBudgetBytes)
        configuration.maximumFeedSubscriptions = try settings.int("feed-max-subscriptions", feedMaxSubscriptions, default: configuration.maximumFeedSubscriptions)
        configuration.maximumFeedSubscriptionsPerTenant = try settings.int(
            "feed-max-subscriptions-per-tenant", feedMaxSubscriptionsPerTenant, default: configuration.maximumFeedSubscriptionsPerTenant)
        configuration.feedMemoryRecordsPerTenant = try settings.int("feed-memory-records", feedMemoryRecords, default: configuration.feedMemoryRecordsPerTenant)
        try ServeLimits.validate(configuration)
        configuration.replication = try replication.configuration(settings, host: configuration.host)
        let metrics = try settings.int("metrics-port", metricsPort, default: ServerConfiguration.defaultMetricsPort)
        configuration.metricsPort = metrics == 0 ? nil : metrics

        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        var auth = AuthenticationConfiguration()
        auth.audience = settings.string("jwt-audience", jwtAudience)
        auth.issuer = settings.string("jwt-issuer", jwtIssuer)
        auth.leewaySeconds = Int64(try settings.int("jwt-leeway", jwtLeeway, default: Int(auth.leewaySeconds)))
        guard (0...TokenVerifier.maximumLeewaySeconds).contains(auth.leewaySeconds) else {
            throw CLIError.usage("--jwt-leeway must be 0 ... \(TokenVerifier.maximumLeewaySeconds) seconds")
        }
        if let secret = try KeyFiles.secret(settings: settings, cli: jwtSecretFile) { auth.hmacSecrets.append(secret) }
        if let jwks = settings.string("jwks-file", jwksFile) {
            guard let text = try? String(contentsOfFile: jwks, encoding: .utf8) else { throw CLIError.usage("cannot read JWKS file \(jwks)") }
            auth.jwksJSON = text
        }
        let devMode = try settings.bool("dev", dev)
        let generatesKey = !auth.hasKeys
        if generatesKey {
            guard devMode else {
                throw CLIError.usage("no token key configured: pass --jwt-secret-file FILE (or LEARNSTORE_JWT_SECRET) or --jwks-file FILE; for a local trial use --dev")
            }
            auth.hmacSecrets.append(try KeyFiles.developmentSecret(dataDirectory: configuration.dataDirectory))
        }
        configuration.authentication = auth

        var persistence = PersistenceConfiguration(dataDirectory: configuration.dataDirectory)
        let fsyncName = settings.string("fsync", fsync) ?? "always"
        guard let policy = FsyncPolicy(rawValue: fsyncName) else { throw CLIError.usage("--fsync must be always, everysec or off") }
        persistence.fsync = policy
        let interval = try settings.double("snapshot-interval", snapshotInterval, default: 3600)
        guard interval.isFinite, (0...ServeLimits.maximumSnapshotIntervalSeconds).contains(interval) else {
            throw CLIError.usage("--snapshot-interval must be 0 (off) ... \(Int(ServeLimits.maximumSnapshotIntervalSeconds)) seconds")
        }
        persistence.snapshotIntervalSeconds = interval > 0 ? interval : nil
        let walBytes = try settings.int("snapshot-wal-bytes", snapshotWALBytes, default: 512 << 20)
        guard walBytes >= 0 else { throw CLIError.usage("--snapshot-wal-bytes must be 0 (off) or a number of bytes") }
        persistence.snapshotWALBytes = walBytes > 0 ? walBytes : nil
        persistence.snapshotLevel = try settings.int("snapshot-level", snapshotLevel, default: 1)
        guard (-5...19).contains(persistence.snapshotLevel) else { throw CLIError.usage("--snapshot-level must be -5 ... 19") }
        persistence.snapshotsKept = try settings.int("snapshots-kept", snapshotsKept, default: 2)
        guard (1...1000).contains(persistence.snapshotsKept) else { throw CLIError.usage("--snapshots-kept must be 1 ... 1000") }
        persistence.segmentBytes = try settings.int("wal-segment-bytes", walSegmentBytes, default: 64 << 20)
        guard persistence.segmentBytes >= 1 << 20 else { throw CLIError.usage("--wal-segment-bytes must be at least 1048576") }
        persistence.forceRecovery = try settings.bool("force-recovery", forceRecovery)
        let retentionSeconds = try settings.double("feed-retention", feedRetention, default: 3600)
        guard retentionSeconds.isFinite, (0...ServeLimits.maximumSnapshotIntervalSeconds).contains(retentionSeconds) else {
            throw CLIError.usage("--feed-retention must be 0 ... \(Int(ServeLimits.maximumSnapshotIntervalSeconds)) seconds")
        }
        let retentionBytes = try settings.int("feed-retention-bytes", feedRetentionBytes, default: 1 << 30)
        guard (0...(1 << 50)).contains(retentionBytes) else { throw CLIError.usage("--feed-retention-bytes must be 0 ... \(1 << 50)") }
        persistence.feedRetention = FeedRetention(bytes: retentionBytes, milliseconds: Int64(retentionSeconds * 1000))

        return ServerSetup(
            configuration: configuration, persistence: persistence, developmentSecret: devMode ? auth.hmacSecrets.first : nil,
            generatedKey: generatesKey, portFile: settings.string("port-file", portFile))
    }
}

/// Loads token keys.
enum KeyFiles {
    static func secret(settings: Settings, cli: String?) throws -> String? {
        if let path = settings.string("jwt-secret-file", cli) {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw CLIError.usage("cannot read secret file \(path)") }
            let secret = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret.utf8.count >= 32 else { throw CLIError.usage("the secret in \(path) must be at least 32 bytes") }
            return secret
        }
        if let raw = settings.environment["LEARNSTORE_JWT_SECRET"], !raw.isEmpty {
            let secret = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            guard secret.utf8.count >= 32 else { throw CLIError.usage("LEARNSTORE_JWT_SECRET must be at least 32 bytes") }
            return secret
        }
        return nil
    }

    /// The development key: generated randomly on first use and kept (mode 0600) in the data directory.
    static func developmentSecret(dataDirectory: String) throws -> String {
        let path = (dataDirectory as NSString).appendingPathComponent("dev-jwt-secret")
        if let existing = try? String(contentsOfFile: path, encoding: .utf8), existing.utf8.count >= 32 {
            return existing.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
        guard FileManager.default.createFile(atPath: path, contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CLIError.failed("cannot write the development key to \(path)")
        }
        return secret
    }
}
