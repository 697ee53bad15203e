import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreServer
import LearnStoreTestSupport
import Testing

/// WAL retention on a real server: segments go only when every tenant with records in them has a
/// snapshot covering those records; a tenant that only reads holds none back.
@Suite struct RetentionTests {
    static func body(_ n: Int) -> RecordBody {
        RecordBody(personID: UUID16(high: 8, low: UInt64(n % 50)), title: "course \(n) " + String(repeating: "x", count: 400), provider: "edX")
    }

    /// What a start would recover from the files as they are now (read-only, beside the running server).
    static func recoverable(_ directory: String) throws -> Recovery.Outcome {
        var options = Recovery.Options(directory: DataDirectory(directory))
        options.readOnly = true
        return try Recovery(options: options).run()
    }

    @Test func aSnapshotOfOneTenantNeverRemovesSegmentsAnotherNeeds() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-retention-")
        let directory = scratch.path + "/data"
        let server = try await TestServer.start(persistence: .forTests(directory))
        let acme = try await server.client(tenant: "acme")
        let newco = try await server.client(tenant: "newco")
        let reader = try await server.client(tenant: "reader")
        for n in 0..<3 { _ = try await acme.performance.learningRecords.create(Self.body(n)) }
        for batch in 0..<6 {
            _ = try await newco.performance.learningRecords.createBatch((0..<1000).map { Self.body(batch * 1000 + $0) })
        }
        _ = try await reader.performance.learningRecords.stats()
        _ = try await acme.performance.learningRecords.create(Self.body(99))
        let segmentsBefore = try DataDirectory(directory).segments(PosixFileSystem()).count
        #expect(segmentsBefore >= 3)

        // acme's snapshot (twice, so its oldest kept one is new too) removes nothing newco needs.
        _ = try await acme.admin.snapshot(force: true)
        _ = try await acme.admin.snapshot(force: true)
        let afterAcme = try Self.recoverable(directory)
        #expect(afterAcme.states["newco"]?.store.liveCount == 6000, "newco's acknowledged records are all recoverable")
        #expect(afterAcme.states["acme"]?.store.liveCount == 4)

        // Once newco is covered too, the old segments go, although "reader" has no snapshot.
        _ = try await newco.admin.snapshot(force: true)
        _ = try await newco.admin.snapshot(force: true)
        let segmentsAfter = try DataDirectory(directory).segments(PosixFileSystem()).count
        #expect(segmentsAfter <= 2, "\(segmentsAfter) segments left of \(segmentsBefore)")
        let afterBoth = try Self.recoverable(directory)
        #expect(afterBoth.states["newco"]?.store.liveCount == 6000)
        #expect(afterBoth.states["acme"]?.store.liveCount == 4)
        for client in [acme, newco, reader] { await client.shutdown() }
        try await server.stop()
    }

    /// A tenant that stopped writing long ago keeps a snapshot far below the oldest segment left once
    /// other tenants' segments are removed: recovery accepts that (the removed-segments file says the
    /// snapshot covers what the tenant had there) and still refuses when the snapshot is gone.
    @Test func aQuietTenantsOldSnapshotBelowTheOldestSegmentRecovers() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-retention-")
        let directory = scratch.path + "/data"
        let server = try await TestServer.start(persistence: .forTests(directory))
        let quiet = try await server.client(tenant: "quiet")
        let busy = try await server.client(tenant: "busy")
        for n in 0..<3 { _ = try await quiet.performance.learningRecords.create(Self.body(n)) }
        _ = try await quiet.admin.snapshot(force: true)
        for batch in 0..<6 {
            _ = try await busy.performance.learningRecords.createBatch((0..<1000).map { Self.body(batch * 1000 + $0) })
        }
        _ = try await busy.admin.snapshot(force: true)
        _ = try await busy.admin.snapshot(force: true)
        let fs = PosixFileSystem()
        let data = DataDirectory(directory)
        let firstSegment = try #require(try data.segments(fs).first)
        #expect(firstSegment > 4, "the quiet tenant's snapshot (LSN 3) is below the oldest segment left (LSN \(firstSegment))")
        let removed = try RemovedSegmentsFile.read(walDirectory: data.walDirectory, fs)
        #expect(removed["quiet"] == 3 && (removed["busy"] ?? 0) > 3, "\(removed)")
        let recovered = try Self.recoverable(directory)
        #expect(recovered.states["quiet"]?.store.liveCount == 3)
        #expect(recovered.states["busy"]?.store.liveCount == 6000)
        for client in [quiet, busy] { await client.shutdown() }
        try await server.stop()

        // Without the quiet tenant's snapshots its records are gone, and recovery says so.
        try FileManager.default.removeItem(atPath: data.tenantDirectory("quiet"))
        #expect(throws: Recovery.Failure.self) { _ = try Self.recoverable(directory) }
    }
}
