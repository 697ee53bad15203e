import LearnStoreServer
import LearnStoreTestSupport
import Testing

/// A port the server cannot listen on is named, with the option that chose it.
@Suite struct ListenFailureTests {
    @Test func aPortInUseIsNamedWithItsOption() async throws {
        let first = try await TestServer.start()
        let taken = first.port
        let refused = await #expect(throws: ListenFailure.self) {
            let second = try await TestServer.start(configure: { $0.port = taken })
            try await second.stop()
        }
        #expect(refused?.port == taken)
        #expect(refused?.description.contains("for clients (--host, --port): the address is in use") == true, "\(String(describing: refused))")
        try await first.stop()
    }

    /// The metrics endpoint binds after the server object exists: the failed start abandons it
    /// before the event loops stop (a debug build traps on a promise left pending).
    @Test func aMetricsPortInUseIsNamedAndTheFailedStartLeavesNothingPending() async throws {
        let first = try await TestServer.start()
        let taken = first.port
        let refused = await #expect(throws: ListenFailure.self) {
            let second = try await TestServer.start(configure: { $0.metricsPort = taken })
            try await second.stop()
        }
        #expect(refused?.description.contains("for the metrics endpoint (--metrics-port; 0 turns it off)") == true, "\(String(describing: refused))")
        try await first.stop()
    }
}
