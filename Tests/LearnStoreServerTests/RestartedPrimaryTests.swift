import LearnStoreClient
import LearnStoreModel
import LearnStoreServer
import LearnStoreTestSupport
import Testing

/// A primary started again cannot know which of its log's last records were acknowledged: with a
/// replica required, it shows its data (reads, replays, the feed) only once a replica has acknowledged
/// its whole log (docs/REPLICATION.md, "A new primary's inherited tail").
@Suite struct RestartedPrimaryTests {
    @Test func aPrimaryStartedAgainShowsItsLogOnceAReplicaAcknowledgedAllOfIt() async throws {
        let pair = try await ReplicationServerTests.startPair()
        let writer = try await pair.primary.client()
        var created: [LearningRecord] = []
        for index in 0..<5 { created.append(try await writer.performance.learningRecords.create(sampleBody(title: "before \(index)")).value) }
        await writer.shutdown()
        try await pair.replica.stop()
        try await pair.primary.stop()

        let primary = try await TestServer.start(configure: ReplicationServerTests.node("a"), persistence: .forTests(pair.directories[0].path))
        let address = try await ReplicationServerTests.replicationAddress(primary)
        let alone = try await ReplicationServerTests.status(address)
        #expect(alone["role"] == .string("primary"))
        #expect((alone["durable_lsn"]?.int64Value ?? 0) >= 5)
        #expect(alone["committed_lsn"] == .number("0"), "no replica has acknowledged the log it started with: \(alone)")
        let reader = try await primary.client()
        // Held until the replica is back and has acknowledged the whole log.
        let newest = created[4].id
        let held = Task { [reader] in try await reader.performance.learningRecords.get(newest) }

        let replica = try await TestServer.start(
            configure: ReplicationServerTests.node("b", follow: [address]), persistence: .forTests(pair.directories[1].path))
        #expect(await eventually(within: 30) {
            guard let status = try? await ReplicationServerTests.status(address) else { return false }
            return status["committed_lsn"] == status["durable_lsn"]
        })
        #expect(try await held.value == created[4])
        for record in created { #expect(try await reader.performance.learningRecords.get(record.id) == record) }
        await reader.shutdown()
        try await replica.stop()
        try await primary.stop()
    }
}
