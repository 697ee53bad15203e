import LearnStoreModel
import NIOCore

/// An operation the load tool can run.
public enum BenchWorkload: String, CaseIterable, Sendable {
    case create, get, listByPerson = "list-by-person", patch, delete, outcomesIngest = "outcomes-ingest", rollup

    var needsRecordIDs: Bool { self == .get || self == .patch || self == .delete }
    /// Picks persons (lists them, or creates records for them): they must be the tenant's own.
    var needsPersons: Bool { self == .listByPerson || self == .create }
    var needsCourse: Bool { self == .rollup }
    /// Its reply starts with the tenant's new sequence.
    var isSequencedWrite: Bool { self == .create || self == .patch || self == .delete }
}

/// A load-tool run (`learnstore bench`).
public struct BenchConfiguration: Sendable {
    public enum Credentials: Sendable {
        /// One token: every connection acts as its tenant.
        case token(String)
        /// An HS256 secret: tokens are minted for `tenants` test tenants (tenant_00000, ...).
        case secret(String)
    }

    public var host = "127.0.0.1"
    public var port = 7878
    /// The measured phase's connections go to this port (a replica of the server on `port`, which
    /// takes the preload); nil: `port`.
    public var measurePort: Int?
    /// The feed subscribers (`subscribers`) subscribe on this port (a replica); nil: `port`.
    public var subscribePort: Int?
    /// Client addresses of a cluster's nodes (`--seeds`): the run goes to the primary they name, and a
    /// connection that gets MOVED, NOT_PRIMARY or SHUTTING_DOWN, or loses its server, is replaced by
    /// one to the primary they name then (a failover during the run). Empty: `host` and `port` only.
    public var seeds: [String] = []
    public var credentials: Credentials
    public var connections = 50
    /// Event-loop threads of the load tool. One per core by default: one thread of the Swift client
    /// was the bottleneck of pipelined reads on two cores (about 0.8M/s against 1.0M/s with two).
    public var clientThreads = System.coreCount
    public var pipeline = 1
    public var requests: Int?
    public var durationSeconds: Double?
    /// Open loop: total requests per second across connections.
    public var rate: Double?
    public var tenants = 10
    public var preload = 0
    public var seed: UInt64 = 42
    public var warmupSeconds = 1.0
    /// Operations and weights (one entry = a single workload).
    public var mix: [(BenchWorkload, Int)] = [(.get, 1)]
    public var serverPID: Int32?
    /// Only load the data (timed) and skip the measured run.
    public var preloadOnly = false
    /// How the preload writes its records.
    public var preloadVia = PreloadMethod.create
    /// Events per OUTCOMES_INGEST request.
    public var eventsPerIngest = 100
    /// Change-feed subscribers (spread over the tenants) that measure delivery latency: from a write's
    /// reply reaching the load tool to its change reaching a subscriber.
    public var subscribers = 0

    public init(credentials: Credentials) { self.credentials = credentials }

    public enum PreloadMethod: String, Sendable, CaseIterable {
        /// CREATE_BATCH under a token of each record's app: the server assigns ids and stamps, and
        /// a tenant whose records carry many apps needs an AUTH per app.
        case create
        /// IMPORT under one tenant-wide admin token per tenant, records complete with ids and apps
        /// (as `learnstore import` loads an export): one request per thousand records of a tenant.
        case `import`
    }

    /// Parses `get=80,create=15,list-by-person=5`.
    public static func parseMix(_ text: String) throws(LearnStoreError) -> [(BenchWorkload, Int)] {
        var mix: [(BenchWorkload, Int)] = []
        for part in text.split(separator: ",") {
            let pieces = part.split(separator: "=")
            guard pieces.count == 2, let workload = BenchWorkload(rawValue: String(pieces[0])), let weight = Int(pieces[1]), weight > 0 else {
                throw LearnStoreError.validation("--mix takes name=weight pairs of \(BenchWorkload.allCases.map(\.rawValue).joined(separator: ", ")); got '\(part)'")
            }
            mix.append((workload, weight))
        }
        guard !mix.isEmpty else { throw LearnStoreError.validation("--mix is empty") }
        return mix
    }

    public func validate() throws(LearnStoreError) {
        guard (1...10_000).contains(connections) else { throw .validation("-c must be 1 ... 10000") }
        guard (1...4096).contains(pipeline) else { throw .validation("-P must be 1 ... 4096") }
        guard (1...1_000_000).contains(tenants) else { throw .validation("--tenants must be 1 ... 1000000") }
        guard (0...1000).contains(subscribers) else { throw .validation("--subscribers must be 0 ... 1000") }
        if let requests { guard requests > 0 else { throw .validation("-n must be positive") } }
        if let durationSeconds { guard durationSeconds > 0 else { throw .validation("--duration must be positive") } }
        if let rate { guard rate > 0 else { throw .validation("--rate must be positive") } }
        guard warmupSeconds >= 0, preload >= 0 else { throw .validation("--warmup and --preload cannot be negative") }
        guard preload == 0 || preload >= tenants else {
            throw .validation("--preload \(preload) is fewer records than --tenants \(tenants): every tenant needs at least one")
        }
        guard requests == nil || durationSeconds == nil else { throw .validation("give -n or --duration, not both") }
        guard seeds.count <= 64 else { throw .validation("--seeds takes at most 64 addresses") }
    }
}
