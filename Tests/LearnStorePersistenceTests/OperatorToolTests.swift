import CanvasOutcomes
import Foundation
import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import LearnStoreWorkload
import Testing
@testable import LearnStorePersistence

/// A data directory written through the real WAL and snapshot writer, with the state of every tenant
/// after every write kept aside, so a restore can be compared with the exact state at that point.
final class RecordedHistory {
    let dir = TemporaryDirectory()
    var data: DataDirectory { DataDirectory(dir.path) }
    /// Tenant → sequence → state after that write.
    var states: [String: [UInt64: TenantState]] = [:]
    /// Tenant → sequence → the write's timestamp.
    var times: [String: [UInt64: Timestamp]] = [:]
    var lastLSN: UInt64 = 0

    static let caller = CallerIdentity(tenantID: "t1", personID: UUID16(high: 9, low: 9),
                                       scopes: [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin])
    static let base: Int64 = 1_700_000_000_000

    /// `writes` rounds; in each, every tenant writes once (a create; every 5th round deletes an earlier
    /// record, the 7th of t1 ingests a course's outcome events), so a tenant's sequence is the round. Write n of a round is stamped `base + round * 1000 + tenant index`.
    /// Snapshots of every tenant are written after the rounds in `snapshotRounds`.
    init(tenants: [String] = ["t1", "t2"], writes: Int = 12, snapshotRounds: Set<Int> = [4, 8], segmentBytes: Int = 64 << 10) throws {
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: data.walDirectory, segmentBytes: segmentBytes), resume: nil)
        wal.start()
        defer { wal.close() }
        var live = Dictionary(uniqueKeysWithValues: tenants.map { ($0, TenantState(tenantID: $0)) })
        var created: [String: [RecordID]] = [:]
        let course = CanvasCourseDataset(students: 8, outcomes: 4, resultsPerOutcome: 4)
        var events = course.eventLines().map { Array($0.utf8) }
        for round in 1...writes {
            for (index, tenant) in tenants.enumerated() {
                let now = Timestamp(milliseconds: Self.base + Int64(round) * 1000 + Int64(index))
                var caller = Self.caller
                caller.tenantID = tenant
                var state = live[tenant]!
                let mutations: [TenantMutation]
                let sequence: UInt64
                if round % 7 == 0, tenant == "t1", !events.isEmpty {
                    let chunk = Array(events)
                    events = []
                    let write = try state.ingest(chunk, caller: caller)
                    (mutations, sequence) = (write.mutations, write.sequence)
                } else if round % 5 == 0, let victim = created[tenant]?[round / 5 - 1] {
                    let write = try state.delete(victim, caller: caller, now: now)
                    (mutations, sequence) = (write.mutations, write.sequence)
                } else {
                    let body = RecordBody(personID: UUID16(high: 2, low: UInt64(round)), title: "\(tenant) course \(round)", provider: "AWS",
                                          score: Double(round % 100), certificationRef: round % 2 == 0 ? "CRED-\(round)" : nil)
                    let write = try state.create(body, caller: caller, now: now)
                    created[tenant, default: []].append(write.result.id)
                    (mutations, sequence) = (write.mutations, write.sequence)
                }
                precondition(!mutations.isEmpty)
                lastLSN = try wal.append(LogEntry(tenantID: tenant, sequence: sequence, timestamp: now, mutations: mutations))
                live[tenant] = state
                states[tenant, default: [:]][sequence] = state
                times[tenant, default: [:]][sequence] = now
            }
            if snapshotRounds.contains(round) {
                let lsn = lastLSN
                #expect(waitFor { wal.committedLSN >= lsn })
                for (tenant, state) in live {
                    _ = try SnapshotFile.write(state.capture(), lsn: lsn, createdAt: Timestamp(milliseconds: Self.base + Int64(round) * 1000 + 500),
                                               directory: data.tenantDirectory(tenant), fileSystem: PosixFileSystem())
                }
            }
        }
        let lsn = lastLSN
        #expect(waitFor { wal.committedLSN >= lsn })
    }

    func recover() throws -> Recovery.Outcome { try Recovery(options: Recovery.Options(directory: data)).run() }

    /// Every file of the directory with its bytes, to show that something changed nothing.
    func files() throws -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        let enumerator = FileManager.default.enumerator(atPath: dir.path)
        while let relative = enumerator?.nextObject() as? String {
            var isDirectory: ObjCBool = false
            let path = dir.path + "/" + relative
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                result[relative] = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
            }
        }
        return result
    }
}

func sameData(_ a: TenantState, _ b: TenantState) -> Bool {
    allRecords(a) == allRecords(b) && a.outcomes.tables == b.outcomes.tables
}

@Suite struct OperatorRestoreTests {
    @Test func pointInTimeBySequenceGivesExactlyTheStateAtThatSequence() throws {
        let history = try RecordedHistory()
        let before = try history.recover()
        let currentSequence = before.states["t1"]!.sequence
        for target in [UInt64(3), 6, 7, 10] {
            var restore = OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: target), dryRun: false,
                                         now: Timestamp(milliseconds: RecordedHistory.base + 100_000))
            restore.snapshotLevel = 3
            let plans = try restore.run()
            let plan = try #require(plans.first)
            #expect(plans.count == 1)
            #expect(plan.restored.sequence == target)
            let recovered = try history.recover()
            let t1 = try #require(recovered.states["t1"])
            #expect(sameData(t1, history.states["t1"]![target]!), "state at sequence \(target)")
            #expect(t1.sequence == plan.newSequence)
            #expect(plan.newSequence > plan.before.sequence)
            #expect(sameData(recovered.states["t2"]!, before.states["t2"]!), "the other tenant is untouched")
        }
        // The snapshots chosen along the way: sequence 3 is before the first snapshot (round 4).
        #expect(currentSequence == 12)
    }

    @Test func pointInTimeByTimeGivesExactlyTheStateAtThatTime() throws {
        let history = try RecordedHistory()
        for (round, expected) in [(2, UInt64(2)), (5, 5), (9, 9)] {
            // Just before round `round + 1`'s writes: t1's state after its `round`th write.
            let time = Timestamp(milliseconds: RecordedHistory.base + Int64(round) * 1000 + 700)
            let plans = try OfflineRestore(directory: history.data, tenants: nil, point: RestorePoint(time: time), dryRun: false,
                                           now: Timestamp(milliseconds: RecordedHistory.base + 200_000)).run()
            #expect(plans.map(\.tenantID) == ["t1", "t2"])
            let recovered = try history.recover()
            for tenant in ["t1", "t2"] {
                #expect(sameData(recovered.states[tenant]!, history.states[tenant]![expected]!), "\(tenant) at round \(round)")
            }
            // Restoring every tenant to a time uses snapshots created before it (round 4 and 8).
            let t1 = plans[0]
            #expect(t1.snapshotSequence == (round >= 8 ? 8 : round >= 4 ? 4 : nil))
        }
    }

    @Test func aChosenSnapshotAloneIsRestoredExactly() throws {
        let history = try RecordedHistory()
        let plans = try OfflineRestore(directory: history.data, tenants: ["t2"], point: RestorePoint(snapshotSequence: 4, sequence: 4), dryRun: false,
                                       now: Timestamp(milliseconds: RecordedHistory.base + 100_000)).run()
        #expect(plans.first?.snapshotSequence == 4)
        #expect(plans.first?.walRecordsApplied == 0)
        #expect(sameData(try history.recover().states["t2"]!, history.states["t2"]![4]!))
    }

    @Test func aDryRunChangesNothingAndSaysWhatWouldChange() throws {
        let history = try RecordedHistory()
        let files = try history.files()
        let plans = try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: 6), dryRun: true,
                                       now: Timestamp(milliseconds: 0)).run()
        #expect(try history.files() == files)
        let plan = try #require(plans.first)
        let current = history.states["t1"]![12]!
        let target = history.states["t1"]![6]!
        #expect(plan.dryRun && plan.snapshotPath == nil)
        #expect(plan.before == TenantFigures(current))
        #expect(plan.restored == TenantFigures(target))
        #expect(plan.snapshotSequence == 4 && plan.walRecordsApplied == 2)
        #expect(plan.newSequence == 13)
        #expect(plan.records == TenantRestore.recordDifference(current, target))
        #expect(plan.records.removed > 0 && plan.records.changed > 0, "later creates disappear; a later delete is undone")
        #expect(plan.outcomeRows.removed > 0, "the outcome events of round 7 disappear")
    }

    @Test func theRestoredStateSurvivesAStartAndWritesContinueAboveIt() throws {
        let history = try RecordedHistory()
        _ = try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: 5), dryRun: false,
                               now: Timestamp(milliseconds: 0)).run()
        // A server start: recovery (truncating nothing here), the WAL opened for appending, a write.
        let (controller, outcome) = try PersistenceController.open(configuration: PersistenceConfiguration(dataDirectory: history.dir.path), limits: EngineLimits())
        controller.start()
        var t1 = try #require(outcome.states["t1"])
        #expect(sameData(t1, history.states["t1"]![5]!))
        #expect(t1.sequence == 13)
        let write = try t1.create(RecordBody(personID: UUID16(high: 5, low: 5), title: "after the restore"), caller: RecordedHistory.caller,
                                  now: Timestamp(milliseconds: RecordedHistory.base + 50_000))
        let lsn = try controller.wal.append(LogEntry(tenantID: "t1", sequence: write.sequence, timestamp: Timestamp(milliseconds: 1), mutations: write.mutations))
        #expect(waitFor { controller.wal.committedLSN >= lsn })
        controller.close()
        let again = try history.recover()
        #expect(sameData(again.states["t1"]!, t1))
        #expect(again.states["t1"]!.sequence == 14)
    }

    /// A WAL cut back below a snapshot (`wal truncate`, or a tail lost to damage): the server goes on
    /// above the snapshot's LSN, so the tenant's reads are not held for an LSN the log would give again.
    @Test func aWALCutBelowASnapshotContinuesAboveTheSnapshot() throws {
        let history = try RecordedHistory()
        let newestSnapshotLSN = try history.data.tenants(PosixFileSystem()).flatMap { tenant in
            try history.data.snapshots(of: tenant, PosixFileSystem()).map {
                try SnapshotFile.readHeader(history.data.snapshotPath(tenant, sequence: $0), fileSystem: PosixFileSystem()).lsn
            }
        }.max() ?? 0
        #expect(newestSnapshotLSN > 3)
        try WALInspector.truncate(try WALInspector.planTruncation(history.data, at: .lsn(3)))
        let (controller, outcome) = try PersistenceController.open(configuration: PersistenceConfiguration(dataDirectory: history.dir.path), limits: EngineLimits())
        controller.start()
        #expect(outcome.report.lastLSN < newestSnapshotLSN)
        #expect(controller.wal.committedLSN >= newestSnapshotLSN, "everything the snapshots hold counts as committed")
        var t1 = try #require(outcome.states["t1"])
        let write = try t1.create(RecordBody(personID: UUID16(high: 5, low: 5), title: "after the cut"), caller: RecordedHistory.caller,
                                  now: Timestamp(milliseconds: RecordedHistory.base + 90_000))
        let lsn = try controller.wal.append(LogEntry(tenantID: "t1", sequence: write.sequence, timestamp: Timestamp(milliseconds: 1), mutations: write.mutations))
        #expect(lsn > newestSnapshotLSN, "no LSN is given twice")
        #expect(waitFor { controller.wal.committedLSN >= lsn })
        controller.close()
        #expect(try history.recover().states["t1"]?.sequence == write.sequence)
    }

    @Test func anOfflineRestoreRefusesADirectoryAServerHolds() throws {
        let history = try RecordedHistory()
        let lock = try history.data.lock()
        defer { DataDirectory.unlock(lock) }
        let files = try history.files()
        let error = #expect(throws: LearnStoreError.self) {
            try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: 2), dryRun: false, now: Timestamp(milliseconds: 0)).run()
        }
        #expect(error?.code == .storageUnavailable)
        #expect(error?.message.contains("in use by another LearnStore process") == true)
        #expect(try history.files() == files)
        // A dry run only reads, so it works beside a server.
        #expect(try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: 2), dryRun: true, now: Timestamp(milliseconds: 0)).run().count == 1)
    }

    @Test func impossiblePointsAreRefusedClearly() throws {
        let history = try RecordedHistory()
        func attempt(_ point: RestorePoint, tenants: Set<String>? = ["t1"]) -> LearnStoreError? {
            #expect(throws: LearnStoreError.self) {
                try OfflineRestore(directory: history.data, tenants: tenants, point: point, dryRun: true, now: Timestamp(milliseconds: 0)).run()
            }
        }
        #expect(attempt(RestorePoint(sequence: 99))?.message.contains("is at sequence 12") == true)
        #expect(attempt(RestorePoint(snapshotSequence: 5))?.message.contains("no snapshot with sequence 5") == true)
        #expect(attempt(RestorePoint(snapshotSequence: 8, sequence: 4))?.field == "snapshot")
        #expect(attempt(RestorePoint(sequence: 4), tenants: nil)?.field == "tenant")
        #expect(attempt(RestorePoint(), tenants: ["nobody"])?.code == .notFound)
        #expect(throws: LearnStoreError.self) {
            try OfflineRestore(directory: DataDirectory(history.dir.path + "/typo"), tenants: nil, point: RestorePoint(), dryRun: true,
                               now: Timestamp(milliseconds: 0)).run()
        }
    }
}

@Suite struct OperatorRetentionTests {
    @Test func aSnapshotAloneCanBeRestoredAfterRetentionRemovedTheWALBeforeIt() throws {
        let history = try RecordedHistory(writes: 300, snapshotRounds: [200])
        let segments = try history.data.segments(PosixFileSystem())
        #expect(segments.count > 2)
        // Retention removed the segments the round-200 snapshots cover (all but the last ones).
        try FileManager.default.removeItem(atPath: history.data.segmentPath(segments[0]))
        let plans = try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(snapshotSequence: 200, sequence: 200),
                                       dryRun: false, now: Timestamp(milliseconds: 0)).run()
        #expect(plans.first?.snapshotSequence == 200)
        #expect(sameData(try history.recover().states["t1"]!, history.states["t1"]![200]!))
        // A point before the oldest snapshot needs the removed WAL: refused, naming the gap.
        let error = #expect(throws: LearnStoreError.self) {
            try OfflineRestore(directory: history.data, tenants: ["t1"], point: RestorePoint(sequence: 50), dryRun: true, now: Timestamp(milliseconds: 0)).run()
        }
        #expect(error?.message.contains("records in between") == true, "\(String(describing: error))")
    }
}
