import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTestSupport
import NIOPosix
import Testing

/// A replica whose next record its primary's log no longer holds copies the primary's files
/// (CATCH_UP), end to end: real servers, real WAL retention, the real client.
@Suite struct CatchUpServerTests {
    static let tenants = ["tenant_a", "tenant_b", "tenant_c"]

    /// Writes to three tenants until the primary's log has removed its first segments: snapshots
    /// cover them, and each tenant writes more after its snapshot.
    static func fillAndCompact(_ primary: TestServer, directory: String) async throws -> [String: [LearningRecord]] {
        var created: [String: [LearningRecord]] = [:]
        let padding = String(repeating: "p", count: 450)
        for tenant in tenants {
            let client = try await primary.client(tenant: tenant)
            for batch in 0..<10 {
                let bodies = (0..<100).map { sampleBody(title: "\(tenant) \(batch) \($0) \(padding)") }
                created[tenant, default: []] += try await client.performance.learningRecords.createBatch(bodies).value
            }
            await client.shutdown()
        }
        for tenant in tenants {
            let client = try await primary.client(tenant: tenant)
            _ = try await client.admin.snapshot(force: true)
            await client.shutdown()
        }
        for tenant in tenants {
            let client = try await primary.client(tenant: tenant)
            created[tenant]!.append(try await client.performance.learningRecords.create(sampleBody(title: "\(tenant) after the snapshots")).value)
            await client.shutdown()
        }
        let first = try DataDirectory(directory).segments(PosixFileSystem()).first
        #expect(first.map { $0 > 1 } == true, "retention removed the first segment (oldest left: \(String(describing: first)))")
        return created
    }

    @Test func aNewReplicaCopiesThePrimaryAndThenFollowsIt() async throws {
        let aDirectory = TemporaryDirectory()
        let bDirectory = TemporaryDirectory()
        var persistence = PersistenceConfiguration.forTests(aDirectory.path)
        persistence.snapshotsKept = 1
        let a = try await TestServer.start(configure: ReplicationServerTests.node("a", minimumInSync: 0), persistence: persistence)
        let aAddress = try await ReplicationServerTests.replicationAddress(a)
        var created = try await Self.fillAndCompact(a, directory: aDirectory.path)

        // A replica with an old log of its own: the copy replaces it.
        let stale = DataDirectory(bDirectory.path)
        try PosixFileSystem().createDirectory(stale.tenantDirectory("tenant_z"))
        try PosixFileSystem().replaceDurably(stale.snapshotPath("tenant_z", sequence: 99), with: [1, 2, 3], directory: stale.tenantDirectory("tenant_z"))
        let b = try await TestServer.start(configure: ReplicationServerTests.node("b", follow: [aAddress]), persistence: .forTests(bDirectory.path))
        #expect(!PosixFileSystem().exists(stale.tenantDirectory("tenant_z")), "the copy replaced what the replica held")
        #expect(!PosixFileSystem().exists(bDirectory.path + "/catch-up"), "the staging directory is gone once installed")

        let writer = try await a.client(tenant: "tenant_b")
        created["tenant_b"]!.append(try await writer.performance.learningRecords.create(sampleBody(title: "after the copy")).value)
        #expect(await eventually(within: 30) { (try? await ReplicationServerTests.status(aAddress))?["in_sync"] == .array([.string("b")]) })
        let bStatus = try await ReplicationServerTests.status(try await ReplicationServerTests.replicationAddress(b))
        #expect(bStatus["catch_up"] == .null && bStatus["problem"] == .null, "the copy is over and the replica follows: \(bStatus)")
        for tenant in Self.tenants {
            let reader = try await b.client(tenant: tenant)
            #expect(await eventually(within: 30) { (try? await reader.performance.learningRecords.get(created[tenant]!.last!.id)) != nil })
            for record in created[tenant]! { #expect(try await reader.performance.learningRecords.get(record.id) == record) }
            await reader.shutdown()
        }
        await writer.shutdown()
        try await b.stop()
        try await a.stop()
    }
}
