import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import Testing

/// After a write burst a tenant's secondary indexes lag behind its records; a LIST, STATS or
/// PURGE_PERSON that would catch them up for a millisecond or more under the tenant's lock waits for a
/// build off the lock instead, and answers exactly as an up-to-date index would.
@Suite struct IndexWaitServerTests {
    @Test func aReadAfterAWriteBurstWaitsForAnOffLockBuildAndAnswersEverything() async throws {
        let server = try await TestServer.start(configure: { $0.metricsPort = 0 })
        let metricsPort = try #require(server.metricsPort)
        let client = try await server.client(tenant: "tenant_a", connections: 2)
        let records = client.performance.learningRecords
        let people = (0..<7).map { UUID16(high: 9, low: UInt64($0)) }
        var expected: [UUID16: Set<RecordID>] = [:]
        for round in 0..<6 {
            let bodies = (0..<1000).map { n in sampleBody(person: people[(round * 1000 + n) % people.count], title: "course \(n)") }
            let created = try await records.createBatch(bodies)
            for record in created.value { expected[record.personID, default: []].insert(record.id) }
        }

        // A write racing the first LIST (on the other connection) may land before or after its build.
        async let listed = Self.ids(records, person: people[3])
        async let written = records.create(sampleBody(person: people[3], title: "during the build"))
        let (firstAnswer, late) = try await (listed, written)
        #expect(Set(firstAnswer).isSuperset(of: expected[people[3]]!))
        expected[people[3]]!.insert(late.value.id)

        for person in people {
            #expect(Set(try await Self.ids(records, person: person)) == expected[person]!, "person \(person)")
        }
        let builds = try await Scrape.get(port: metricsPort)["learnstore_read_index_builds_total"]
        #expect(builds == 1, "one build for the first read; the reads after it found the indexes current")
        #expect(try await records.stats()["records"] == .number("6001"))
        await client.shutdown()
        try await server.stop()
    }

    static func ids(_ records: LearningRecordsClient, person: UUID16) async throws -> [RecordID] {
        var ids: [RecordID] = []
        for try await record in records.list(ListQuery(personID: person, limit: 500)) { ids.append(record.id) }
        return ids
    }
}
