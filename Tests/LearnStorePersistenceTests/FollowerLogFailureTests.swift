import LearnStoreEngine
import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import LearnStorePersistence

/// A replica's log keeps its primary's LSNs, gaps included, so after a restart it follows on from the
/// last LSN it holds. A record it made durable after one that failed would hide the failed one: the
/// log would end past the hole and the replica would never be sent what it lacks (simulation seed
/// 24206233). Driven step by step on the log's own clock, as the simulator drives it.
@Suite struct FollowerLogFailureTests {
    struct Follower {
        let dir = TemporaryDirectory()
        let fs = FaultInjectingFileSystem()
        let clock = ManualClock()
        let wal: WriteAheadLog

        init(haltsOnFailure: Bool) throws {
            let configuration = WALConfiguration(
                directory: dir.path + "/wal", policy: .always, segmentBytes: 64 << 10, fileSystem: fs,
                appendersWriteNow: false, prepareSegmentsInBackground: false)
            wal = try WriteAheadLog(configuration: configuration, resume: nil, clock: clock)
            wal.haltsOnFailure = haltsOnFailure
            // The tenants undo their failed writes at once (they hold nothing in memory here).
            let wal = self.wal
            wal.onFailure = { rollbacks in for rollback in rollbacks { wal.rollbackDone(tenant: rollback.tenant) } }
        }

        /// Queues the primary's record of `tenant` at `lsn` and runs one writer round.
        func ship(_ n: Int, tenant: String, sequence: UInt64, lsn: UInt64) throws(LearnStoreError) {
            var sealed = WALRecord.encodeUnsequenced(entry(sequence, tenant: tenant, records: [sampleRecord(n, tenant: tenant)]))
            WALRecord.seal(&sealed, lsn: lsn)
            try wal.appendReplicated(sealed, lsn: lsn, tenant: tenant, sequence: sequence)
            wal.runWriterStep()
        }

        /// A failed write of LSN 2, then the disk heals and a second passes on the log's clock.
        func failTheSecondRecordThenHeal() throws {
            try ship(1, tenant: "t1", sequence: 1, lsn: 1)
            #expect(wal.locallyDurableLSN == 1)
            fs.inject(.writeError(5), pathContains: "wal-")
            try ship(2, tenant: "t1", sequence: 2, lsn: 2)
            #expect(wal.hasFailed(2))
            fs.clearFaults()
            clock.advance(milliseconds: 1_000)
            wal.runWriterStep()
        }

        func recoveredLastLSN() throws -> UInt64 {
            wal.close()
            return try Recovery(options: Recovery.Options(directory: DataDirectory(dir.path))).run().report.lastLSN
        }
    }

    @Test func aFollowersLogWritesNothingAfterAFailedWrite() throws {
        let follower = try Follower(haltsOnFailure: true)
        try follower.failTheSecondRecordThenHeal()
        #expect(throws: LearnStoreError.self, "another tenant's next record is refused: the log stays failed") {
            try follower.ship(3, tenant: "t2", sequence: 1, lsn: 3)
        }
        follower.clock.advance(milliseconds: 5_000)
        follower.wal.runWriterStep()
        #expect(throws: LearnStoreError.self) { try follower.ship(3, tenant: "t2", sequence: 1, lsn: 3) }
        #expect(try follower.recoveredLastLSN() == 1, "the restart follows on from LSN 1 and is sent LSN 2 again")
    }

    /// What the halt prevents: a log that recovers from the failure makes LSN 3 durable, and its
    /// restart ends at 3 with nothing at 2.
    @Test func aLogThatRecoversEndsPastTheFailedRecord() throws {
        let follower = try Follower(haltsOnFailure: false)
        try follower.failTheSecondRecordThenHeal()
        try follower.ship(3, tenant: "t2", sequence: 1, lsn: 3)
        #expect(follower.wal.locallyDurableLSN == 3)
        #expect(try follower.recoveredLastLSN() == 3)
    }
}
