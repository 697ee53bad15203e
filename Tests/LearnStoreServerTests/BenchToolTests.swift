import CanvasOutcomes
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
@testable import LearnStoreTools
import LearnStoreTestSupport
import Synchronization
import LearnStoreWorkload
import Testing

/// `learnstore bench` against a real server: every workload runs without errors, and the data it
/// set up is really there (a workload the server refuses would measure only the rejection path).
@Suite struct BenchToolTests {
    func configuration(_ server: TestServer, _ workload: BenchWorkload) -> BenchConfiguration {
        var configuration = BenchConfiguration(credentials: .secret(testSecret))
        configuration.port = server.port
        configuration.connections = 4
        configuration.pipeline = 4
        configuration.tenants = 2
        configuration.preload = 2_000
        configuration.requests = 400
        configuration.warmupSeconds = 0
        configuration.mix = [(workload, 1)]
        return configuration
    }

    @Test(arguments: BenchWorkload.allCases)
    func everyWorkloadRunsWithoutErrors(_ workload: BenchWorkload) async throws {
        let server = try await TestServer.start()
        let report = try await BenchRunner(configuration: configuration(server, workload)).run()
        #expect(report.total >= 400)
        #expect(report.errors.isEmpty, "\(report.errors)")
        #expect(report.preloadRecords == 2_000)

        let client = try await server.client(tenant: "tenant_00000")
        switch workload {
        case .rollup:
            let outcomes = try await client.outcomes.outcomes(in: ContextRef(type: "Course", id: "90000"))
            #expect(outcomes.count == 100)
        case .outcomesIngest:
            let outcomes = try await client.outcomes.outcomes(in: ContextRef(type: "Course", id: "91000"))
            #expect(!outcomes.isEmpty)
        default:
            break
        }
        await client.shutdown()
        try await server.stop()
    }
}

/// What the load tool sends and reads, checked piece by piece (the workloads must be the peers').
@Suite struct BenchWorkloadShapeTests {
    /// As peerbench's create: each request draws its person from the tenant, its completion time
    /// over a year, and its own credential reference, cohort and assessment; only categorical
    /// fields come from the pool of bodies.
    @Test func createsDrawTheirOwnTimesIdsAndPersons() throws {
        let dataset = PeerDataset(records: 2_000, tenants: 1, seed: 1)
        let bodies = (0..<20).map { dataset.item($0).body }
        let persons = (0..<500).map { UUID16(high: 0x5F0C, low: UInt64($0)) }
        let generator = RequestGenerator(mix: [(.create, 1)], ids: [], persons: persons, bodies: bodies,
                                         ingestBatches: [], course: nil, seed: 9)
        var created: [RecordBody] = []
        for _ in 0..<200 {
            var writer = ByteWriter()
            let (opcode, _) = generator.next(into: &writer)
            #expect(opcode == Opcode.create)
            let body = try writer.bytes.withUnsafeBytes { raw throws(DecodeError) in
                var reader = ByteReader(raw)
                return try RecordMessages.decodeCreate(from: &reader).0
            }
            created.append(body)
        }
        let completed = created.compactMap { $0.completedAt.valueOrNil?.milliseconds }
        #expect(completed.count == 200 && Set(completed).count == 200)
        #expect(completed.allSatisfy { (1_700_000_000_000..<1_731_536_000_000).contains($0) })
        let expiring = created.filter { $0.expiresAt.valueOrNil != nil }
        #expect((100...180).contains(expiring.count), "\(expiring.count) of 200 expire")
        #expect(expiring.allSatisfy { $0.expiresAt.valueOrNil!.milliseconds - $0.completedAt.valueOrNil!.milliseconds == 63_072_000_000 })
        #expect(Set(created.compactMap { $0.linkedCohortID.valueOrNil }).count == 200)
        #expect(Set(created.compactMap { $0.certificationRef.valueOrNil }).count == 200)
        let people = Set(created.compactMap { $0.personID.valueOrNil })
        #expect(people.isSubset(of: Set(persons)) && people.count > 100)
        // The pool still supplies the categorical fields.
        #expect(Set(created.compactMap { $0.title.valueOrNil }).isSubset(of: Set(bodies.compactMap { $0.title.valueOrNil })))
    }

    /// The preload stores exactly --preload records, split over the tenants (the last one takes the
    /// remainder), with fewer connections than tenants.
    @Test func aPreloadStoresExactlyWhatItSaysOverManyTenants() async throws {
        let server = try await TestServer.start()
        var load = BenchConfiguration(credentials: .secret(testSecret))
        load.port = server.port
        load.connections = 8
        load.tenants = 30
        load.preload = 1_003
        load.preloadOnly = true
        let report = try await BenchRunner(configuration: load).run()
        #expect(report.preloadRecords == 1_003)
        var total = 0
        for index in [0, 1, 28, 29] {
            let client = try await server.client(tenant: PeerDataset.tenantID(index))
            let records = try await client.performance.learningRecords.stats()["records"]?.int64Value
            #expect(records == (index == 29 ? 46 : 33), "tenant \(index)")
            await client.shutdown()
        }
        for index in 0..<30 {
            let client = try await server.client(tenant: PeerDataset.tenantID(index))
            total += Int(try await client.performance.learningRecords.stats()["records"]?.int64Value ?? 0)
            await client.shutdown()
        }
        #expect(total == 1_003)
        load.preload = 29
        #expect(throws: LearnStoreError.self) { try load.validate() }
        try await server.stop()
    }

    /// A run without a preload lists the tenant's records to learn its ids and persons, so gets,
    /// lists and creates spread over all of them (not only over the few persons of the template).
    @Test func aRunWithoutPreloadDiscoversEveryPersonOfTheTenant() async throws {
        let server = try await TestServer.start()
        var load = BenchConfiguration(credentials: .secret(testSecret))
        load.port = server.port
        load.tenants = 1
        load.preload = 6_000
        load.preloadOnly = true
        _ = try await BenchRunner(configuration: load).run()

        var run = load
        run.preload = 0
        run.preloadOnly = false
        let runner = BenchRunner(configuration: run)
        let dataset = PeerDataset(records: 2_000, tenants: 1, seed: run.seed)
        let tenants = try await runner.prepareTenants(dataset)
        #expect(tenants[0].persons.count == 200)
        let (ids, persons) = try await runner.discoverRecords(tenants[0])
        #expect(ids.count == 6_000)
        #expect(persons.count == 600)
        #expect(Set(tenants[0].persons).isSubset(of: Set(persons)))
        try? await runner.group.shutdownGracefully()
        try await server.stop()
    }

    /// A run started while the server recovers waits (and says so) until data requests are served,
    /// instead of failing with LOADING.
    @Test func aRunWaitsWhileTheServerIsLoading() async throws {
        let server = try await TestServer.start(stayLoading: true)
        var configuration = BenchConfiguration(credentials: .secret(testSecret))
        configuration.port = server.port
        configuration.tenants = 1
        let messages = Mutex<[String]>([])
        let runner = BenchRunner(configuration: configuration) { line in messages.withLock { $0.append(line) } }
        let token = try runner.token(for: "tenant_00000")
        let finished = Atomic<Bool>(false)
        let waiting = Task {
            try await runner.waitWhileLoading(token: token)
            finished.store(true, ordering: .releasing)
        }
        let said = await eventually(within: 10) { messages.withLock { $0.contains { $0.contains("waiting") } } }
        #expect(said)
        let finishedWhileLoading = finished.load(ordering: .acquiring)
        #expect(!finishedWhileLoading)
        server.server.context.runtime.finishLoading()
        try await waiting.value
        let finishedAfterLoading = finished.load(ordering: .acquiring)
        #expect(finishedAfterLoading)
        try? await runner.group.shutdownGracefully()
        try await server.stop()
    }
}
