import LearnStoreModel
import Synchronization
import Testing

@testable import LearnStoreEngine

/// Which writes not yet durable a read waits for: a GET only those that touched its record, every
/// other read all of the tenant's.
@Suite struct ReadDependencyTests {
    /// A log whose commit mark the test moves.
    final class SteppedLog: MutationLog {
        private let next = Mutex<UInt64>(0)
        let committed = Mutex<UInt64>(0)

        func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 { next.withLock { $0 += 1; return $0 } }
        var committedLSN: UInt64 { committed.withLock { $0 } }
    }

    @Test func aGetWaitsOnlyForWritesThatTouchedItsRecord() async throws {
        let log = SteppedLog()
        let tenant = TenantActor(state: TenantState(tenantID: tenantA), log: log)
        let who = caller()
        let x = try await tenant.create(body(title: "x"), caller: who)
        let y = try await tenant.create(body(title: "y"), caller: who)
        log.committed.withLock { $0 = y.lsn }
        let unrelated = RecordID(high: 7, low: 7)
        #expect(await tenant.observedLSN(ofRecord: x.result.id) == y.lsn, "all committed: the newest, already resolved")

        let patched = try await tenant.patch(x.result.id, body(title: "x2"), caller: who)
        let created = try await tenant.create(body(title: "z"), caller: who)
        #expect(await tenant.observedLSN(ofRecord: x.result.id) == patched.lsn, "the patch of x, not the later create")
        #expect(await tenant.observedLSN(ofRecord: created.result.id) == created.lsn)
        #expect(await tenant.observedLSN(ofRecord: y.result.id) == 0, "y was not touched since the commit mark")
        #expect(await tenant.observedLSN(ofRecord: unrelated) == 0)
        #expect(await tenant.observedLSN == created.lsn, "every other read waits for all of them")

        _ = try await tenant.delete(y.result.id, caller: who)
        let deleted = await tenant.observedLSN
        #expect(await tenant.observedLSN(ofRecord: y.result.id) == deleted, "a NOT_FOUND after a delete waits for the delete")
    }

    @Test func manyPendingStepsFallBackToEveryWrite() async throws {
        let log = SteppedLog()
        let tenant = TenantActor(state: TenantState(tenantID: tenantA), log: log)
        let batch = try await tenant.createBatch((0..<100).map { body(title: "r\($0)") }, caller: caller())
        #expect(await tenant.observedLSN(ofRecord: RecordID(high: 7, low: 7)) == batch.lsn)
    }
}
