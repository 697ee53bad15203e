import CanvasOutcomes
import LearnStoreClient
import LearnStoreModel
import LearnStoreTools
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
