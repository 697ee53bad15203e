import ArgumentParser
import Foundation
import LearnStoreModel
import LearnStoreTokens
import LearnStoreTools

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Load-test a LearnStore server with the bundled client.",
        discussion: """
            Workloads: \(BenchWorkload.allCases.map(\.rawValue).joined(separator: ", ")). Data: 10 tenants by default \
            (--tenants), each with persons of 10 records; courses, providers, scores, completion and expiry \
            times and cohorts are drawn from a seeded generator (--seed), so runs are repeatable.
            With --key-file, tokens are minted for test tenants tenant_00000...; with --token, every connection \
            uses that token's tenant.
            Examples:
              learnstore bench --key-file secret -c 50 -P 16 --preload 100000 --workload get --duration 10
              learnstore bench --token $T --mix get=80,create=15,list-by-person=5 --rate 50000 --json out.json --plot out.svg
            """)

    @Option(help: "Server host.") var host: String?
    @Option(help: "Server port.") var port: Int?
    @Option(help: "Client addresses (host:port,...) of any nodes of a cluster: the load goes to the primary they name (TOPOLOGY) instead of --host/--port, and follows a failover during the run (a connection refused with MOVED or NOT_PRIMARY, or closed, is replaced by one to the new primary; the report counts replacements, unanswered requests and the longest pause).") var seeds: String?
    @Option(name: .customLong("measure-port"), help: "Send the measured requests to this port instead (a replica of the server on --port, which takes the preload).") var measurePort: Int?
    @Option(name: .customLong("subscribe-port"), help: "With --subscribers: subscribe on this port instead (a replica of the server on --port: it serves the feed with only acknowledged changes, off the primary).") var subscribePort: Int?
    @Option(help: "A JWT (or LEARNSTORE_TOKEN).") var token: String?
    @Option(name: .customLong("key-file"), help: "An HS256 secret file: mint tokens for --tenants test tenants.") var keyFile: String?
    @Option(name: .short, help: "Connections.") var c = 50
    @Option(name: .customShort("P"), help: "Requests in flight per connection (closed loop).") var pipeline = 1
    @Option(name: .short, help: "Stop after this many requests.") var n: Int?
    @Option(help: "Seconds to measure (default 10).") var duration: Double?
    @Option(help: "Open loop: requests per second in total, latency from each request's intended start (coordinated-omission correction).") var rate: Double?
    @Option(help: "A single workload.") var workload: String?
    @Option(help: "A weighted mix, e.g. get=80,create=15,list-by-person=5.") var mix: String?
    @Option(help: "Test tenants (with --key-file).") var tenants = 10
    @Option(help: "Create this many records first, split evenly over the tenants (bulk load, timed).") var preload = 0
    @Flag(name: .customLong("preload-only"), help: "Only run the (timed) preload.") var preloadOnly = false
    @Option(name: .customLong("preload-via"), help: "How the preload writes: create (CREATE_BATCH with a token of each record's app; the server assigns ids) or import (IMPORT with each tenant's admin token, ids made by the load tool).") var preloadVia = "create"
    @Option(help: "Change-feed subscribers, spread over the tenants, measuring delivery latency (reply to the writer → change at the subscriber).") var subscribers = 0
    @Option(help: "Random seed.") var seed: UInt64 = 42
    @Option(help: "Seconds of warm-up before measuring.") var warmup = 1.0
    @Option(name: .customLong("server-pid"), help: "Report the server's CPU time per operation (from /proc).") var serverPID: Int32?
    @Option(help: "Write the results as JSON to this file.") var json: String?
    @Option(help: "Draw latency percentiles and throughput over time to this SVG file.") var plot: String?
    @Option(help: "Client event-loop threads (default: one per core).") var threads: Int?
    @Option(name: .customLong("config"), help: "Config file.") var config: String?

    func run() async throws {
        try await runCLI {
            let settings = try Settings(configFile: config)
            let credentials: BenchConfiguration.Credentials
            if let keyFile = settings.string("key-file", keyFile) {
                guard let secret = try? String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !secret.isEmpty else {
                    throw CLIError.usage("cannot read the key file \(keyFile)")
                }
                credentials = .secret(secret)
            } else if let token = settings.string("token", token) {
                credentials = .token(token)
            } else {
                throw CLIError.usage("pass --token (or LEARNSTORE_TOKEN) or --key-file")
            }
            var configuration = BenchConfiguration(credentials: credentials)
            configuration.host = settings.string("host", host) ?? "127.0.0.1"
            configuration.port = try settings.int("port", port, default: 7878)
            if let seeds = settings.string("seeds", seeds) {
                let token: String
                switch credentials {
                case .token(let given): token = given
                case .secret(let secret):
                    token = try await TokenMinter(secret: secret).mint(
                        tenantID: "bench_seed", person: UUID16(high: 0, low: 1), scopes: [.recordsRead],
                        issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 300)
                }
                (configuration.host, configuration.port) = try await ClientOptions.primary(seeds: seeds, token: token)
                configuration.seeds = try ClientOptions.seedList(seeds)
            }
            if let measurePort {
                guard (1...65535).contains(measurePort) else { throw CLIError.usage("--measure-port must be 1 ... 65535") }
                configuration.measurePort = measurePort
            }
            if let subscribePort {
                guard (1...65535).contains(subscribePort), subscribers > 0 else { throw CLIError.usage("--subscribe-port must be 1 ... 65535, with --subscribers") }
                configuration.subscribePort = subscribePort
            }
            configuration.connections = c
            configuration.pipeline = pipeline
            configuration.subscribers = subscribers
            if let threads {
                guard threads >= 1 else { throw CLIError.usage("--threads must be at least 1") }
                configuration.clientThreads = threads
            }
            configuration.requests = n
            // Both become whole milliseconds or nanoseconds; a week bounds any sensible run.
            let timed: [(String, Double?)] = [("--duration", duration), ("--warmup", warmup)]
            for (name, seconds) in timed {
                if let seconds, !(seconds.isFinite && (0...604_800).contains(seconds)) {
                    throw CLIError.usage("\(name) must be 0 to 604800 seconds")
                }
            }
            configuration.durationSeconds = duration ?? (n == nil ? 10 : nil)
            if let rate {
                // The open loop divides a second by the rate and converts the schedule to integers.
                guard rate.isFinite, rate >= 1, rate <= 1e9 else { throw CLIError.usage("--rate must be 1 to 1000000000 requests per second") }
            }
            configuration.rate = rate
            configuration.tenants = tenants
            configuration.preload = preload
            configuration.seed = seed
            configuration.preloadOnly = preloadOnly
            guard let via = BenchConfiguration.PreloadMethod(rawValue: preloadVia) else {
                throw CLIError.usage("--preload-via must be create or import, not \(preloadVia)")
            }
            configuration.preloadVia = via
            configuration.warmupSeconds = warmup
            configuration.serverPID = serverPID
            if let mix {
                configuration.mix = try BenchConfiguration.parseMix(mix)
            } else {
                let name = workload ?? "get"
                guard let single = BenchWorkload(rawValue: name) else {
                    throw CLIError.usage("unknown workload '\(name)'; choose from \(BenchWorkload.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                configuration.mix = [(single, 1)]
            }
            let interactive = isatty(STDERR_FILENO) != 0
            let runner = BenchRunner(configuration: configuration) { line in
                FileHandle.standardError.write(Data((interactive ? "\r\u{1B}[K" + line : line + "\n").utf8))
            }
            let report = try await runner.run()
            if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
            print(report.text)
            if let json {
                try report.json.serialized.write(toFile: json, atomically: true, encoding: .utf8)
            }
            if let plot {
                try BenchPlot.svg(report).write(toFile: plot, atomically: true, encoding: .utf8)
            }
        }
    }
}
