import LearnStoreClient
import LearnStoreModel
import LearnStoreTestSupport
import Testing

/// Work that scales with a tenant's size runs off its lock, and the answers are those of the work
/// done in place: after a write burst, a LIST, STATS or PURGE_PERSON that would catch the secondary
/// indexes up for a millisecond or more waits for a build off the lock; an IMPORT of records older
/// than the tenant's newest re-sorts a copy and swaps it in.
@Suite struct OffLockServerTests {
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

    @Test func anImportOfOlderRecordsRunsOnACopyAndLandsInOrder() async throws {
        let server = try await TestServer.start(configure: { $0.metricsPort = 0 })
        let metricsPort = try #require(server.metricsPort)
        let client = try await server.client(tenant: "tenant_a", connections: 1)
        let records = client.performance.learningRecords
        let person = UUID16(high: 9, low: 1)
        let current = try await records.createBatch((0..<1000).map { sampleBody(person: person, title: "current \($0)") }).value
        let older = (0..<300).map { n in
            var record = current[n]
            record.id = RecordID(milliseconds: 1_600_000_000_000 + UInt64(n), randomHigh: 7, randomLow: UInt64(n))
            record.createdAt = Timestamp(milliseconds: 1_600_000_000_000 + Int64(n))
            record.updatedAt = record.createdAt
            record.title = "older \(n)"
            return record
        }
        let report = try await client.admin.importBatch(records: older)
        #expect(report.records == 300)
        let oldestFirst = try await records.page(ListQuery(personID: person, order: .ascending, limit: 300)).records
        #expect(oldestFirst.map(\.id) == older.map(\.id), "the imported records sort before the tenant's own")
        #expect(try await records.get(older[17].id).title == "older 17")
        #expect(try await records.stats()["records"] == .number("1300"))
        let rebuilds = try await Scrape.get(port: metricsPort)["learnstore_import_rebuilds_total"]
        #expect(rebuilds == 1)
        await client.shutdown()
        try await server.stop()
    }

    static func ids(_ records: LearningRecordsClient, person: UUID16) async throws -> [RecordID] {
        var ids: [RecordID] = []
        for try await record in records.list(ListQuery(personID: person, limit: 500)) { ids.append(record.id) }
        return ids
    }
}
