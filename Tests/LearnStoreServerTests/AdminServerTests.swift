import CanvasOutcomes
import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreTestSupport
import LearnStoreWorkload
import Synchronization
import Testing

/// The admin opcodes over TCP against a server with persistence: snapshot, point-in-time restore of
/// one tenant while another keeps being served, the restore surviving a restart, and import.
@Suite struct AdminServerTests {
    static func body(_ n: Int, _ tenant: String) -> RecordBody {
        RecordBody(personID: UUID16(high: 3, low: UInt64(n)), title: "\(tenant) course \(n)", provider: "edX", score: Double(n % 100))
    }

    static func allRecords(_ client: LearnStoreClient) async throws -> [LearningRecord] {
        var query = ListQuery(limit: 1000)
        query.includeDeleted = true
        query.order = .ascending
        var records: [LearningRecord] = []
        for try await record in client.performance.learningRecords.list(query) { records.append(record) }
        return records
    }

    /// The leeway on `exp` (PROTOCOL.md 4.2) holds for the admin opcodes as for every other request:
    /// a token that expired 5 s ago, within the default 30 s, still reaches SNAPSHOT's own checks.
    @Test func adminRequestsHonourTheExpiryLeeway() async throws {
        let server = try await TestServer.start()
        let now = server.clock.now().milliseconds
        let token = try await server.token(lifetime: 60, issuedAt: Timestamp(milliseconds: now - 65_000))
        let raw = try RawConnection(port: server.port)
        let auth = try #require(await raw.handshake(token: token))
        #expect(!auth.header.isError, "accepted within the leeway")
        raw.send(RawConnection.frame(Opcode.adminSnapshot, id: 3) { AdminMessages.encodeSnapshot(force: false, into: &$0) })
        let reply = try #require(await raw.receiveFrame())
        #expect(raw.error(of: reply)?.code == .storageUnavailable, "past exp but within the leeway: \(String(describing: raw.error(of: reply)))")
        try await server.stop()
    }

    @Test func restoreReplacesOneTenantWhileAnotherKeepsServingAndSurvivesARestart() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-admin-")
        let directory = scratch.path
        let server = try await PersistentTestServer.start(dataDirectory: directory)
        let a = try await server.client(tenant: "tenant_a")
        var created: [LearningRecord] = []
        for n in 1...10 { created.append(try await a.performance.learningRecords.create(Self.body(n, "a")).value) }
        let snapshot = try await a.admin.snapshot()
        #expect(snapshot.written && snapshot.sequence == 10 && snapshot.records == 10)
        #expect(snapshot.file == "tenants/tenant_a/" + SnapshotHeader.fileName(sequence: 10))
        #expect(try await a.admin.snapshot().written == false, "unchanged since the last one")
        for n in 11...15 { created.append(try await a.performance.learningRecords.create(Self.body(n, "a")).value) }
        _ = try await a.performance.learningRecords.delete(created[2].id)  // sequence 16

        // Tenant B writes and reads all along; none of its requests may fail.
        let b = try await server.client(tenant: "tenant_b", connections: 2)
        let stop = Atomic<Bool>(false)
        let writer = Task {
            var written: [RecordID] = []
            var n = 0
            while !stop.load(ordering: .relaxed) || n < 20 {
                n += 1
                let record = try await b.performance.learningRecords.create(Self.body(n, "b")).value
                _ = try await b.performance.learningRecords.get(record.id)
                written.append(record.id)
            }
            return written
        }

        let dryRun = try await a.admin.restoreTenant(RestoreTenantRequest(dryRun: true, sequence: 12))
        #expect(dryRun.dryRun && dryRun.snapshotSequence == 10 && dryRun.walRecordsApplied == 2)
        #expect(dryRun.before == .init(sequence: 16, records: 14, deletedRecords: 1, outcomeRows: 0))
        #expect(dryRun.restored == .init(sequence: 12, records: 12, deletedRecords: 0, outcomeRows: 0))
        #expect(dryRun.records == .init(added: 0, removed: 3, changed: 1))
        #expect(dryRun.newSequence == 17)
        #expect(try await Self.allRecords(a).count == 15, "a dry run changes nothing")
        #expect(try await a.performance.learningRecords.stats()["sequence"] == .number("16"))

        let report = try await a.admin.restoreTenant(RestoreTenantRequest(sequence: 12))
        #expect(!report.dryRun && report.restored.sequence == 12 && report.newSequence == 17)
        #expect(try await Self.allRecords(a) == Array(created.prefix(12)))
        #expect(try await a.performance.learningRecords.stats()["sequence"] == .number("17"))
        let after = try await a.performance.learningRecords.create(Self.body(99, "a")).value
        #expect(try await a.performance.learningRecords.stats()["sequence"] == .number("18"))

        stop.store(true, ordering: .relaxed)
        let bWritten = try await writer.value
        #expect(bWritten.count >= 20)
        await a.shutdown()
        await b.shutdown()
        try await server.stop()

        // A restart recovers the restored tenant plus the write after it, and all of B.
        let restarted = try await PersistentTestServer.start(dataDirectory: directory)
        let a2 = try await restarted.client(tenant: "tenant_a")
        #expect(try await Self.allRecords(a2) == Array(created.prefix(12)) + [after])
        #expect(try await a2.performance.learningRecords.stats()["sequence"] == .number("18"))
        let b2 = try await restarted.client(tenant: "tenant_b")
        #expect(try await Self.allRecords(b2).map(\.id) == bWritten)
        await a2.shutdown()
        await b2.shutdown()
        try await restarted.stop()
    }

    @Test func restoreFromAChosenSnapshotAndRefusals() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-admin-")
        let directory = scratch.path
        let server = try await PersistentTestServer.start(dataDirectory: directory)
        let a = try await server.client(tenant: "tenant_a")
        var created: [LearningRecord] = []
        for n in 1...4 { created.append(try await a.performance.learningRecords.create(Self.body(n, "a")).value) }
        #expect(try await a.admin.snapshot().sequence == 4)
        for n in 5...6 { created.append(try await a.performance.learningRecords.create(Self.body(n, "a")).value) }

        let fromSnapshot = try await a.admin.restoreTenant(RestoreTenantRequest(snapshotSequence: 4, sequence: 4))
        #expect(fromSnapshot.snapshotSequence == 4 && fromSnapshot.walRecordsApplied == 0)
        #expect(try await Self.allRecords(a) == Array(created.prefix(4)))

        func code(_ request: RestoreTenantRequest, _ client: LearnStoreClient) async -> LearnStoreError.Code? {
            do {
                _ = try await client.admin.restoreTenant(request)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(await code(RestoreTenantRequest(sequence: 100), a) == .validation)
        #expect(await code(RestoreTenantRequest(snapshotSequence: 3), a) == .validation)
        // A tenant that never wrote a snapshot has none to choose: refused, not rebuilt from the WAL.
        let c = try await server.client(tenant: "tenant_c")
        _ = try await c.performance.learningRecords.create(Self.body(1, "c")).value
        #expect(await code(RestoreTenantRequest(snapshotSequence: 1), c) == .validation)
        #expect(await code(RestoreTenantRequest(dryRun: true, snapshotSequence: 1), c) == .validation)
        #expect(try await Self.allRecords(c).count == 1)
        await c.shutdown()
        let reader = try await server.client(tenant: "tenant_a", scopes: [.recordsRead, .recordsWrite])
        #expect(await code(RestoreTenantRequest(dryRun: true), reader) == .forbidden)
        do {
            _ = try await reader.admin.snapshot()
            Issue.record("SNAPSHOT without the admin scope succeeded")
        } catch {
            #expect(error.code == .forbidden)
        }
        // Requests sent concurrently with an admin request are all answered. Which of the two
        // creates leaves first is up to the task scheduler (two `async let` tasks), so only their
        // distinct sequences are checked here; answers in order on one connection are checked by
        // ConnectionHandlerTests and the protocol conformance run.
        async let one = a.performance.learningRecords.create(Self.body(7, "a"))
        async let snapshot = a.admin.snapshot(force: true)
        async let two = a.performance.learningRecords.create(Self.body(8, "a"))
        let (first, written, second) = try await (one, snapshot, two)
        #expect(first.sequence != second.sequence && written.written)
        await reader.shutdown()
        await a.shutdown()
        try await server.stop()
    }

    @Test func importPutsRecordsAndOutcomeRowsAsOneWrite() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-admin-")
        let directory = scratch.path
        let server = try await PersistentTestServer.start(dataDirectory: directory)
        let source = try await server.client(tenant: "source")
        for n in 1...5 { _ = try await source.performance.learningRecords.create(Self.body(n, "s")) }
        let course = CanvasCourseDataset(students: 3, outcomes: 2, resultsPerOutcome: 2)
        _ = try await source.outcomes.ingest(jsonEvents: course.eventLines())
        let records = try await Self.allRecords(source)

        // Rows as `export` writes them: derived from the source tenant's state on the server.
        let state = await server.server.context.registry.tenant("source").state
        var rows: [[UInt8]] = []
        state.outcomes.tables.forEachRecord { rows.append(Array($0.exportJSON.serialized.utf8)) }
        let target = try await server.client(tenant: "target")
        let report = try await target.admin.importBatch(records: records, outcomeRows: rows)
        #expect(report.sequence == 1 && report.records == 5 && report.outcomesApplied == rows.count && report.outcomesUnchanged == 0)
        #expect(try await Self.allRecords(target).map { var r = $0; r.tenantID = "source"; return r } == records)
        #expect(await server.server.context.registry.tenant("target").state.outcomes.tables == state.outcomes.tables)
        let again = try await target.admin.importBatch(records: [], outcomeRows: rows)
        #expect(again.outcomesApplied == 0 && again.sequence == 1, "nothing newer: no write")
        do {
            _ = try await target.admin.importBatch(records: [], outcomeRows: [Array(#"{"kind":"learning_outcome","entity":{}}"#.utf8)])
            Issue.record("a bad row was imported")
        } catch {
            #expect(error.code == .validation && error.field?.hasPrefix("outcome_rows[0]") == true)
        }
        await source.shutdown()
        await target.shutdown()
        try await server.stop()
    }
}
