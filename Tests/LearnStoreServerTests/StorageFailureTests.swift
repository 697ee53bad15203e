import Foundation
import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real server whose WAL meets a failing disk (docs/PROTOCOL.md, section 5): the write that cannot be
/// made durable is answered with STORAGE_UNAVAILABLE and undone, reads go on, writes resume once the
/// disk recovers, and the data directory holds exactly the acknowledged writes afterwards.
@Suite struct StorageFailureTests {
    static func configuration(_ directory: String, _ fileSystem: any FileSystem) -> PersistenceConfiguration {
        var configuration = PersistenceConfiguration.forTests(directory)
        configuration.fileSystem = fileSystem
        configuration.fsync = .always
        return configuration
    }

    static func body(_ title: String) -> RecordBody {
        RecordBody(personID: UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: 0x9a1b_0000_0000_0042), title: title, provider: "AWS", score: 90)
    }

    /// Every record of the tenant, deleted ones too, oldest first.
    static func everything(_ client: LearnStoreClient) async throws -> [LearningRecord] {
        var all: [LearningRecord] = []
        for try await record in client.performance.learningRecords.list(ListQuery(includeDeleted: true, order: .ascending, limit: 7)) {
            all.append(record)
        }
        return all
    }

    static func sequence(_ client: LearnStoreClient) async throws -> String? {
        guard case .number(let value)? = try await client.performance.learningRecords.stats()["sequence"] else { return nil }
        return value
    }

    /// The error code `body` fails with, or nil when it succeeds.
    static func errorCode(_ body: () async throws -> Void) async -> LearnStoreError.Code? {
        do {
            try await body()
            return nil
        } catch {
            return (error as? LearnStoreError)?.code ?? LearnStoreError.Code(rawValue: 0, name: "\(error)")
        }
    }

    @Test(arguments: [FaultInjectingFileSystem.Fault.writeError(ENOSPC), .writeError(EIO), .syncError(EIO)])
    func aWriteThatCannotBeMadeDurableIsRefusedAndUndone(fault: FaultInjectingFileSystem.Fault) async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-storage-")
        let directory = scratch.path + "/data"
        let disk = FaultInjectingFileSystem()
        var server = try await TestServer.start(persistence: Self.configuration(directory, disk))
        var client = try await server.client()
        let records = client.performance.learningRecords
        var acknowledged: [LearningRecord] = []
        for index in 0..<3 { acknowledged.append(try await records.create(Self.body("before-\(index)")).value) }
        #expect(try await Self.sequence(client) == "3")

        // The disk fails every WAL write (or sync) from now on, until the fault is cleared.
        disk.inject(fault, times: 1_000_000, pathContains: "wal-")

        // The create that meets the fault is answered with STORAGE_UNAVAILABLE; a LIST pipelined right
        // behind it either observed it (and is refused the same way) or does not show it.
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token()).map { !$0.header.isError } == true)
        let doomed = RawConnection.frame(Opcode.create, id: 10) { RecordMessages.encodeCreate(Self.body("doomed"), idempotencyKey: nil, into: &$0) }
        let list = RawConnection.frame(Opcode.list, id: 11) { ListQueryCodec.encode(ListQuery(includeDeleted: true, limit: 1000), into: &$0) }
        await raw.sendAsync(doomed + list)
        let createReply = try #require(await raw.receiveFrame())
        #expect(createReply.header.requestID == 10)
        #expect(raw.error(of: createReply)?.code == .storageUnavailable, "\(String(describing: raw.error(of: createReply)))")
        let listReply = try #require(await raw.receiveFrame())
        #expect(listReply.header.requestID == 11)
        if let error = raw.error(of: listReply) {
            #expect(error.code == .storageUnavailable)
        } else {
            let (listed, _) = try listReply.payload.withByteReader { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }
            #expect(listed.map(\.title) == acknowledged.reversed().map(\.title), "a read showed a write that was not durable")
        }

        // While the disk fails, writes are refused and change nothing; reads are served.
        #expect(await Self.errorCode { _ = try await records.create(Self.body("refused")) } == .storageUnavailable)
        #expect(await Self.errorCode { _ = try await records.delete(acknowledged[0].id) } == .storageUnavailable)
        #expect(try await records.get(acknowledged[0].id) == acknowledged[0])
        #expect(try await Self.everything(client) == acknowledged, "the failed writes were undone")
        #expect(try await Self.sequence(client) == "3", "failed writes take no sequence number")
        #expect(disk.counts.writes + disk.counts.syncs > 0)

        // Once the disk recovers, the WAL takes writes again (it retries its disk once a second).
        disk.clearFaults()
        var resumed: LearningRecord?
        let resumedInTime = await eventually(within: 15) {
            let code = await Self.errorCode { resumed = try await records.create(Self.body("after")).value }
            #expect(code == nil || code == .storageUnavailable)
            return code == nil
        }
        #expect(resumedInTime, "writes did not resume after the fault was cleared")
        acknowledged.append(try #require(resumed))
        #expect(try await Self.sequence(client) == "4")
        #expect(try await Self.everything(client) == acknowledged)
        await client.shutdown()
        try await server.stop()

        // A restart of the data directory (from the snapshot taken at shutdown) serves exactly the
        // acknowledged writes.
        server = try await TestServer.start(persistence: Self.configuration(directory, PosixFileSystem()))
        client = try await server.client()
        #expect(try await Self.everything(client) == acknowledged, "after a restart from the snapshot")
        #expect(try await Self.sequence(client) == "4")
        await client.shutdown()
        try await server.stop()

        // And from the WAL alone: without snapshots, recovery replays every WAL record, so a failed
        // write whose bytes reached the segment would come back here.
        let data = DataDirectory(directory)
        for tenant in try data.tenants(PosixFileSystem()) {
            for sequence in try data.snapshots(of: tenant, PosixFileSystem()) {
                try FileManager.default.removeItem(atPath: data.snapshotPath(tenant, sequence: sequence))
            }
        }
        server = try await TestServer.start(persistence: Self.configuration(directory, PosixFileSystem()))
        client = try await server.client()
        #expect(try await Self.everything(client) == acknowledged, "after a restart from the WAL")
        #expect(try await Self.sequence(client) == "4")
        await client.shutdown()
        try await server.stop()
    }

    /// Reads of acknowledged data never wait for, or fail because of, writes that failed: during the
    /// failure, after it, on new connections, before any new write succeeds.
    @Test func readsOfAcknowledgedDataWorkAfterWritesFailed() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-storage-")
        let directory = scratch.path + "/data"
        let disk = FaultInjectingFileSystem()
        let server = try await TestServer.start(persistence: Self.configuration(directory, disk))
        let client = try await server.client()
        let other = try await server.client(tenant: "tenant_b")
        var acknowledged: [LearningRecord] = []
        for index in 0..<3 { acknowledged.append(try await client.performance.learningRecords.create(Self.body("kept-\(index)")).value) }
        _ = try await other.performance.learningRecords.create(Self.body("b"))
        disk.inject(.writeError(ENOSPC), times: 1_000_000, pathContains: "wal-")
        // Writes of both tenants fail together, twice.
        for _ in 0..<2 {
            async let first = Self.errorCode { _ = try await client.performance.learningRecords.create(Self.body("refused")) }
            async let second = Self.errorCode { _ = try await other.performance.learningRecords.create(Self.body("refused")) }
            #expect(await first == .storageUnavailable)
            #expect(await second == .storageUnavailable)
        }
        #expect(try await client.performance.learningRecords.get(acknowledged[0].id) == acknowledged[0])
        disk.clearFaults()
        // A new connection, no write since: reads are served.
        let fresh = try await server.client()
        #expect(try await fresh.performance.learningRecords.get(acknowledged[1].id) == acknowledged[1])
        #expect(try await Self.everything(fresh) == acknowledged)
        #expect(try await Self.sequence(fresh) == "3")
        await fresh.shutdown()
        await other.shutdown()
        await client.shutdown()
        try await server.stop()
    }
}
