import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport
import Testing

func sampleBody(person: UUID16 = UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: 1), title: String = "AWS SAA", score: Double? = 88) -> RecordBody {
    RecordBody(personID: person, title: title, provider: "AWS", completedAt: Timestamp(milliseconds: 1_750_000_000_000),
               expiresAt: Timestamp(milliseconds: 1_800_000_000_000), score: score, passed: true, certificationRef: "CRED-AWS-1")
}

@Suite struct ServerOperationTests {
    @Test func everyOperationThroughTheClient() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let records = client.performance.learningRecords

        let created = try await records.create(sampleBody())
        #expect(created.sequence == 1)
        #expect(created.value.tenantID == "tenant_a")
        #expect(try await records.get(created.value.id) == created.value)

        let batch = try await records.createBatch((0..<5).map { sampleBody(person: UUID16(high: 1, low: UInt64($0))) })
        #expect(batch.value.count == 5)
        #expect(batch.sequence == 2)

        var patch = RecordBody()
        patch.score = .value(42)
        patch.certificationRef = .null
        let patched = try await records.patch(created.value.id, patch, expectedUpdatedAt: created.value.updatedAt)
        #expect(patched.value.score == 42 && patched.value.certificationRef == nil)
        await #expect(throws: LearnStoreError.self) {
            _ = try await records.patch(created.value.id, patch, expectedUpdatedAt: created.value.updatedAt)
        }

        let deleted = try await records.delete(created.value.id)
        #expect(deleted.value.isDeleted)
        #expect(try await records.get(created.value.id).isDeleted)
        let restored = try await records.restore(created.value.id)
        #expect(!restored.value.isDeleted)

        let page = try await records.page(ListQuery(limit: 4))
        #expect(page.records.count == 4)
        #expect(page.nextCursor != nil)
        var all: [RecordID] = []
        for try await record in records.list(ListQuery(limit: 2)) { all.append(record.id) }
        #expect(all.count == 6)
        #expect(Set(all).count == 6)

        let dry = try await records.purgePerson(UUID16(high: 1, low: 3), dryRun: true)
        #expect(dry.value == 1)
        let purged = try await records.purgePerson(UUID16(high: 1, low: 3), dryRun: false)
        #expect(purged.value == 1)
        await #expect(throws: LearnStoreError.self) { _ = try await records.get(batch.value[3].id) }

        let stats = try await records.stats()
        #expect(stats["records"] == .number("5"))
        #expect(try await client.ping() > .zero)
        #expect(try await client.info()["server"] == .string("learnstore"))
        await client.shutdown()
        try await server.stop()
    }

    @Test func errorsAreTypedAndNameTheField() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let records = client.performance.learningRecords
        do {
            _ = try await records.create(sampleBody(score: 101))
            Issue.record("accepted")
        } catch {
            #expect(error.code == .validation)
            #expect(error.field == "score")
        }
        var body = sampleBody()
        body.stampedFieldsSent = [.tenantID]
        do {
            _ = try await records.create(body)
            Issue.record("accepted")
        } catch {
            #expect(error.field == "tenant_id")
        }
        do {
            _ = try await records.get(RecordID(milliseconds: 1, randomHigh: 0, randomLow: 0))
            Issue.record("found")
        } catch {
            #expect(error.code == .notFound)
        }
        await client.shutdown()
        try await server.stop()
    }

    @Test func idempotentRetryOverTheWire() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let records = client.performance.learningRecords
        let first = try await records.create(sampleBody(), idempotencyKey: "retry-1")
        let second = try await records.create(sampleBody(), idempotencyKey: "retry-1")
        #expect(second.replayed)
        #expect(second.value == first.value)
        #expect(try await records.page(ListQuery()).records.count == 1)
        await client.shutdown()
        try await server.stop()
    }

    /// Many requests at once on a client whose pooled connections are not open yet: each slot opens
    /// one connection, which every request waiting for it shares.
    @Test func aBurstOfFirstRequestsOpensOneConnectionPerSlot() async throws {
        let server = try await TestServer.start()
        let client = try await server.client(connections: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<400 {
                group.addTask { _ = try await client.ping() }
            }
            try await group.waitForAll()
        }
        #expect(server.server.context.runtime.connections == 4)
        await client.shutdown()
        #expect(await eventually { server.server.context.runtime.connections == 0 })
        try await server.stop()
    }

    @Test func deepPipelineOnOneConnection() async throws {
        let server = try await TestServer.start()
        let client = try await server.client(connections: 1)
        let records = client.performance.learningRecords
        let ids = try await records.createBatch((0..<100).map { sampleBody(person: UUID16(high: 2, low: UInt64($0))) }).value.map(\.id)
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<3000 {
                group.addTask { try await records.get(ids[i % ids.count]).id == ids[i % ids.count] }
            }
            var count = 0
            for try await matched in group {
                #expect(matched)
                count += 1
            }
            #expect(count == 3000)
        }
        await client.shutdown()
        try await server.stop()
    }

    @Test func tenantsOnBothLoopsAnswerInOrder() async throws {
        let server = try await TestServer.start()
        // Several tenants: some live on the connection's loop, some on the other.
        for tenant in ["t1", "t2", "t3", "t4", "t5", "t6"] {
            let client = try await server.client(tenant: tenant, connections: 1)
            let records = client.performance.learningRecords
            let created = try await records.create(sampleBody(title: tenant))
            #expect(try await records.get(created.value.id).title == tenant)
            await client.shutdown()
        }
        try await server.stop()
    }
}
