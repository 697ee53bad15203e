import Foundation
import LearnStorePersistence
import LearnStoreTestSupport
import Testing

/// The deterministic simulation over a fixed set of seeds (LEARNSTORE_SIMULATION_SEEDS=N runs more;
/// `learnstore simulate` runs any number). A failing seed prints itself and its last steps: it replays
/// exactly, and belongs in `regressions` once fixed.
@Suite struct DurabilitySimulationTests {
    static let seedCount = ProcessInfo.processInfo.environment["LEARNSTORE_SIMULATION_SEEDS"].flatMap(Int.init) ?? 100
    /// Seeds that once failed, kept as regression tests, with what each found. Each was found with the
    /// simulator and code of its day; a change to the order of file operations changes the path a
    /// seed takes, so a seed keeps running here but may no longer walk its original path (the tests
    /// below pin the paths that matter by what the run must show).
    static let regressions: [(seed: UInt64, policy: FsyncPolicy)] = [
        (5, .always),  // a failed sync's bytes replayed by recovery although no commit marker closed them
        (23757, .everysec),  // a batch the writer thread wrote, then failed to sync, came back after a crash
        (203, .always),  // a wipe cut short left zeroed records before an intact commit marker
        (3112167, .everysec),  // a short write whose bytes completed a valid batch: uncertain until wiped
        (1026251, .always),  // recovery replayed never-synced bytes of a failed write; a machine crash then lost that state
        (1027906, .always),  // the same after a failed fdatasync: recovery now syncs each segment before serving
        (61, .everysec),  // a restore's snapshot stayed after its directory sync failed; recovery loaded it over a later write
        (3001675, .always),  // a restore after a rollback: recovery replayed the failed write (not yet wiped) over the restored snapshot
        (3004589, .always),  // the same, another path
        (5010940, .always),  // a snapshot whose directory sync failed let recovery skip failed records; a machine crash lost its name and brought them back
        (7003721, .always),  // a snapshot taken while a failed write was not yet wiped; a later start found it damaged and replayed the write from an older one
        (42205, .always),  // a flipped bit in the newest write took changes the feed had given (a documented loss, not a feed fault)
        (40156, .everysec),  // the same
    ]

    /// Seeds that once failed with 8 KiB segments (many rotations), run with them.
    static let smallSegmentRegressions: [(seed: UInt64, policy: FsyncPolicy)] = [
        (587, .always),  // after a rotation's failed write, recovery resumed in the empty newest segment below its name
        (44, .everysec),  // the same under everysec
        (233, .always),  // the same, found by an online restore's rebuild
        (4, .always),  // failed writes brought back by a crash: the simulation kept only the last, the feed read all
        (11, .always),  // the same
        (12, .everysec),  // a machine crash lost log records a snapshot held: the feed's gap is not a lost change
        (23, .everysec),  // the same
        (28, .everysec),  // the same
        (31819, .always),  // a flipped bit in the newest write took changes the feed had given (a documented loss)
        (31965, .always),  // the same, and the lost records left a gap before the next write
        (50229, .everysec),  // a machine crash took log records a snapshot kept, with no later write: the end check wanted them read
        (106484, .everysec),  // then a bit flipped in that snapshot: recovery fell back to an older one and lost acknowledged writes without a word
        (1, .always),  // a new tenant directory never synced into its parent: a machine crash took its only snapshot
        (114, .always),  // a directory whose parent sync failed was never synced again (it existed, so it was not created again)
        (68, .everysec),  // the same
        (86, .everysec),  // the same
    ]

    static func check(_ seeds: [UInt64], policy: FsyncPolicy, segmentBytes: Int? = nil) {
        var options = DurabilitySimulation.Options()
        options.policy = policy
        if let segmentBytes { options.segmentBytes = segmentBytes }
        for seed in seeds {
            var simulation = DurabilitySimulation(seed: seed, options: options)
            let result = simulation.run()
            #expect(result.failure == nil, "seed \(seed) (\(policy)): \(result.failure ?? "")\n\(result.trace.joined(separator: "\n"))")
            if result.failure != nil { return }
        }
    }

    /// LEARNSTORE_SIMULATION_SEED=N POLICY=everysec replays one seed.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["LEARNSTORE_SIMULATION_SEED"] != nil))
    func oneSeed() async {
        let environment = ProcessInfo.processInfo.environment
        await offTheCooperativePool {
            Self.check([UInt64(environment["LEARNSTORE_SIMULATION_SEED"]!)!], policy: FsyncPolicy(rawValue: environment["POLICY"] ?? "always") ?? .always)
        }
    }

    @Test func seedsUnderFsyncAlways() async {
        await offTheCooperativePool {
            Self.check(Self.regressions.filter { $0.policy == .always }.map(\.seed) + (1...UInt64(Self.seedCount)).map { $0 }, policy: .always)
        }
    }

    @Test func seedsUnderFsyncEverySecond() async {
        await offTheCooperativePool {
            Self.check(Self.regressions.filter { $0.policy == .everysec }.map(\.seed) + (1...UInt64(Self.seedCount)).map { $0 &* 7919 }, policy: .everysec)
        }
    }

    @Test func smallSegmentSeedsThatOnceFailed() async {
        await offTheCooperativePool {
            for (seed, policy) in Self.smallSegmentRegressions { Self.check([seed], policy: policy, segmentBytes: 8 << 10) }
        }
    }

    /// Seed 71 under `everysec` fails the directory sync of an online restore after its rename: the
    /// controller must take the file back, or a restart loads it over the tenant's next write.
    @Test func aRestoreWhoseDirectorySyncFailedIsTakenBack() async {
        await offTheCooperativePool { Self.restoreTakenBack() }
    }

    static func restoreTakenBack() {
        var options = DurabilitySimulation.Options()
        options.policy = .everysec
        var simulation = DurabilitySimulation(seed: 71, options: options)
        let result = simulation.run()
        #expect(result.failure == nil, "\(result.failure ?? "")\n\(result.trace.joined(separator: "\n"))")
        #expect(result.restoresTakenBack > 0, "the seed no longer fails a restore's directory sync: pick another")
    }

    @Test func aSeedReplaysExactly() {
        var first = DurabilitySimulation(seed: 42)
        var second = DurabilitySimulation(seed: 42)
        let a = first.run()
        let b = second.run()
        #expect(a.trace == b.trace)
        #expect(a.acknowledged == b.acknowledged && a.faults == b.faults && a.crashes == b.crashes)
        #expect(a.acknowledged > 0 && a.crashes > 0 && a.faults > 0, "the run exercised writes, crashes and faults")
    }

    /// The faults and workloads that make the invariants meaningful happen in a typical handful of
    /// seeds: with 8 KiB segments they rotate and are removed while the quiet tenant's snapshot lies
    /// below them, syncs are slow, bits flip, outcome ingests and online restores are acknowledged.
    @Test func seedsExerciseEveryFaultAndWorkload() async {
        await offTheCooperativePool { Self.exerciseEveryFault() }
    }

    static func exerciseEveryFault() {
        var options = DurabilitySimulation.Options()
        options.segmentBytes = 8 << 10
        let results = (UInt64(1)...20).map { seed in
            var simulation = DurabilitySimulation(seed: seed, options: options)
            return simulation.run()
        }
        for result in results { #expect(result.failure == nil, "seed \(result.seed): \(result.failure ?? "")") }
        func total(_ figure: (DurabilitySimulation.Result) -> Int) -> Int { results.map(figure).reduce(0, +) }
        #expect(total(\.segmentsRemoved) >= 20, "segments removed: \(total(\.segmentsRemoved))")
        #expect(total(\.startsWithQuietTenantBelowOldestSegment) > 0)
        #expect(total(\.slowSyncs) > 0 && total(\.bitFlips) > 0 && total(\.outcomeIngests) > 0 && total(\.restores) > 0)
        #expect(total(\.movePieces) > 20 && total(\.releases) > 0, "partition moves: \(total(\.movePieces)) pieces copied in, \(total(\.releases)) releases")
        #expect(results.filter { $0.detectedCorruption != nil }.count < 10, "most seeds run to their end")
        #expect(total(\.feedChanges) > 100 && total(\.feedTruncations) > 0, "feed: \(total(\.feedChanges)) changes, \(total(\.feedTruncations)) truncations")
        #expect(total(\.feedChangesFromMemory) > 0 && total(\.feedFellBehindMemory) > 0,
                "feed from memory: \(total(\.feedChangesFromMemory)) changes, \(total(\.feedFellBehindMemory)) falls behind")
    }

    /// With a feed window the followers keep up across crashes; the window holds segments that the
    /// snapshots alone would let go.
    @Test func seedsWithAFeedWindow() async {
        await offTheCooperativePool {
            var options = DurabilitySimulation.Options()
            options.segmentBytes = 8 << 10
            options.feedRetention = FeedRetention(bytes: 32 << 10, milliseconds: 30_000)
            for policy in [FsyncPolicy.always, .everysec] {
                options.policy = policy
                let results = (UInt64(1)...10).map { seed in
                    var simulation = DurabilitySimulation(seed: seed, options: options)
                    return simulation.run()
                }
                for result in results { #expect(result.failure == nil, "seed \(result.seed) (\(policy)): \(result.failure ?? "")\n\(result.trace.joined(separator: "\n"))") }
                #expect(results.map(\.feedChanges).reduce(0, +) > 100)
            }
        }
    }

    /// The replication simulation: crashes, partitions, broken and duplicated frames, failing replica
    /// disks and promotions (`learnstore simulate-replication` runs many more seeds).
    @Test func replicationSeeds() {
        var copies = 0
        var movePieces = 0
        var releases = 0
        for seed in UInt64(1)...40 {
            var simulation = ReplicationSimulation(seed: seed)
            let result = simulation.run()
            copies += result.catchUps
            movePieces += result.movePieces
            releases += result.releases
            #expect(result.failure == nil, "seed \(seed): \(result.failure ?? "")\n\(result.trace.joined(separator: "\n"))")
        }
        #expect(copies > 0, "replicas copied their primary (CATCH_UP) in some of the runs")
        #expect(movePieces > 20 && releases > 0, "partition moves' writes: \(movePieces) pieces copied in, \(releases) releases")
    }

    /// Seeds that once failed: an epoch number reused by a promotion that never heard of the first
    /// (207, 384), a promotion of a replica that had learned of an epoch but held none of its records
    /// (846), a fenced old primary, the only live node holding acknowledged writes, passed over (11075),
    /// an old primary whose divergent records only a snapshot beyond the cut reached after retention
    /// removed their segments (16), a cut below the oldest segment left (36), and a copy of a primary
    /// whose newest segment held no record yet (1312), a replica whose log failed under records it had
    /// applied, healed without its log ever writing again (2001295), a primary started again in place
    /// that showed the unacknowledged end of its log as committed before a replica held it, cut by the
    /// next promotion (898, 2287, 2710), a promoted replica that did the same with the end of its
    /// log an old primary wrote (3712, 4017), and a replica whose disk failed under one tenant's
    /// record while it went on writing the next records of others, so that its restart ended past the
    /// failed record and followed on from there without it (24206233).
    @Test func replicationSeedsThatOnceFailed() {
        for seed: UInt64 in [1, 16, 36, 79, 207, 301, 384, 613, 647, 702, 717, 846, 858, 898, 1312, 2287, 2710, 3712, 4017, 11075, 11681, 12384, 12791, 2001295, 24206233] {
            var simulation = ReplicationSimulation(seed: seed)
            let result = simulation.run()
            #expect(result.failure == nil, "seed \(seed): \(result.failure ?? "")")
        }
    }
}
