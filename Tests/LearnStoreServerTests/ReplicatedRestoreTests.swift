import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTestSupport
import Testing

/// Online restores with replication on: the restore is logged as one write on the primary, reaches
/// the replica and the change feed like any write, and survives the replica's restart.
@Suite struct ReplicatedRestoreTests {
    @Test func anOnlineRestoreOnThePrimaryReachesItsReplicaAndItsRestart() async throws {
        let pair = try await ReplicationServerTests.startPair()
        let writer = try await pair.primary.client()
        var created: [LearningRecord] = []
        for n in 1...6 { created.append(try await writer.performance.learningRecords.create(sampleBody(title: "kept \(n)")).value) }
        #expect(try await writer.admin.snapshot().sequence == 6)
        for n in 7...10 { created.append(try await writer.performance.learningRecords.create(sampleBody(title: "undone \(n)")).value) }
        _ = try await writer.performance.learningRecords.delete(created[1].id)  // sequence 11

        let replicaReader = try await pair.replica.client()
        let refused = await #expect(throws: LearnStoreError.self, "a replica's tenants change only through its primary") {
            _ = try await replicaReader.admin.restoreTenant(RestoreTenantRequest(sequence: 6))
        }
        #expect(refused?.code == .notPrimary)

        let report = try await writer.admin.restoreTenant(RestoreTenantRequest(sequence: 6))
        #expect(report.restored.sequence == 6 && report.newSequence == 12)
        #expect(try await AdminServerTests.allRecords(writer) == Array(created.prefix(6)))
        // Acknowledged only once the replica has it durable: the replica shows it (reads there show
        // acknowledged writes once the primary's commit mark reaches it).
        #expect(await eventually(within: 30) { (try? await AdminServerTests.allRecords(replicaReader)) == Array(created.prefix(6)) })
        #expect(try await replicaReader.performance.learningRecords.stats()["sequence"] == .number("12"))

        // The feed gives the restore as one change: the tenant replaced, with what it holds now.
        let subscription = writer.feed.subscribe(from: .after(11))
        let change = try #require(try await FeedServerTests.take(1, subscription).first)
        #expect(change.sequence == 12 && change.parts.first == .tenantRestore)
        #expect(change.parts.contains { if case .records(_, let records) = $0 { records.count == 6 } else { false } })

        let after = try await writer.performance.learningRecords.create(sampleBody(title: "after")).value
        await replicaReader.shutdown()
        try await pair.replica.stop()
        let restarted = try await TestServer.start(
            configure: ReplicationServerTests.node("b", follow: [pair.primaryAddress]), persistence: .forTests(pair.directories[1].path))
        let reader = try await restarted.client()
        #expect(await eventually(within: 30) { (try? await AdminServerTests.allRecords(reader)) == Array(created.prefix(6)) + [after] })
        await reader.shutdown()
        await writer.shutdown()
        try await restarted.stop()
        try await pair.primary.stop()
    }

    /// A restore too large for one write a replica can take whole is refused before anything changes.
    @Test func aRestoreTooLargeForOneReplicatedWriteIsRefusedAndChangesNothing() async throws {
        let pair = try await ReplicationServerTests.startPair()
        let writer = try await pair.primary.client()
        let title = String(repeating: "t", count: 500)
        for batch in 0..<13 {
            let bodies = (0..<1000).map { sampleBody(title: "\(batch)-\($0)-" + title) }
            _ = try await writer.performance.learningRecords.createBatch(bodies)
        }
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "last"))
        let refused = await #expect(throws: LearnStoreError.self) {
            _ = try await writer.admin.restoreTenant(RestoreTenantRequest(sequence: 13))
        }
        #expect(refused?.code == .validation, "\(String(describing: refused))")
        #expect(refused?.message.contains("restore offline") == true)
        #expect(try await writer.performance.learningRecords.stats()["sequence"] == .number("14"), "nothing was written")
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "still writable"))
        await writer.shutdown()
        try await pair.stop()
    }
}
