import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreTestSupport
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// The change feed end to end: the real server with its WAL on loopback, the real client.
/// Subscriptions reconnect by themselves for minutes; the limit turns a subscription that never gets
/// its changes into a failure instead of a stalled run.
@Suite(.timeLimit(.minutes(3))) struct FeedServerTests {
    static func persistence(_ directory: TemporaryDirectory, retention: FeedRetention = .standard) -> PersistenceConfiguration {
        var configuration = PersistenceConfiguration.forTests(directory.path)
        configuration.feedRetention = retention
        return configuration
    }

    /// Takes `count` changes from a fresh iterator of `subscription`.
    static func take(_ count: Int, _ subscription: FeedSubscription) async throws -> [FeedChange] {
        var changes: [FeedChange] = []
        for try await change in subscription {
            changes.append(change)
            if changes.count == count { break }
        }
        return changes
    }

    static func kinds(_ change: FeedChange) -> [String] {
        change.parts.map { part in
            switch part {
            case .records(let kind, _): kind.name
            case .purge: "purge"
            case .outcomes: "outcomes"
            case .tenantRestore: "tenant_restore"
            }
        }
    }

    @Test func everyKindOfWriteArrivesInSequenceOrder() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        let records = client.performance.learningRecords
        let person = UUID16(high: 9, low: 9)
        let created = try await records.create(sampleBody(person: person))
        var patch = RecordBody()
        patch.title = .value("patched")
        let patched = try await records.patch(created.value.id, patch)
        _ = try await records.delete(created.value.id)
        _ = try await records.restore(created.value.id)
        let batch = try await records.createBatch([sampleBody(person: person), sampleBody()])
        let purged = try await records.purgePerson(person, dryRun: false)
        #expect(purged.value == 2)

        let changes = try await Self.take(6, client.feed.subscribe(from: .after(0)))
        #expect(changes.map(\.sequence) == [1, 2, 3, 4, 5, 6])
        #expect(changes.map(Self.kinds) == [["create"], ["patch"], ["delete"], ["restore"], ["create"], ["purge"]])
        guard case .records(_, let afterPatch) = changes[1].parts[0] else { Issue.record("no records in the patch"); return }
        #expect(afterPatch == [patched.value], "a change carries the record as it is after the write")
        guard case .records(_, let createdTwo) = changes[4].parts[0] else { Issue.record("no records in the batch"); return }
        #expect(createdTwo == batch.value)
        guard case .purge(let ids) = changes[5].parts[0] else { Issue.record("no ids in the purge"); return }
        #expect(Set(ids) == [created.value.id, batch.value[0].id])
        try await server.stop()
    }

    @Test func aResumedSubscriptionContinuesRightAfterItsLastChangeAndFollowsLiveWrites() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        let records = client.performance.learningRecords
        for index in 0..<20 { _ = try await records.create(sampleBody(title: "r\(index)")) }
        let first = try await Self.take(7, client.feed.subscribe(from: .after(0), credit: 4))
        #expect(first.map(\.sequence) == Array(1...7))
        let writer = Task {
            for index in 20..<60 { _ = try await records.create(sampleBody(title: "r\(index)")) }
        }
        let rest = try await Self.take(53, client.feed.subscribe(from: .after(7), credit: 8))
        try await writer.value
        #expect(rest.map(\.sequence) == Array(8...60), "no change is lost or repeated across the resume, and live writes follow")
        try await server.stop()
    }

    /// A subscribed connection on which nothing arrives for the client's silence limit is closed and
    /// the subscription resumes on a new one, losing nothing: here the server's heartbeat is a minute
    /// and the limit half a second, so an idle subscription keeps reconnecting until writes come.
    @Test func aSilentConnectionIsReplacedAndTheSubscriptionResumes() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(configure: { $0.feedHeartbeatSeconds = 60 }, persistence: Self.persistence(directory))
        var configuration = ClientConfiguration(host: "127.0.0.1", port: server.port, token: try await server.token(), connections: 1)
        configuration.feedSilenceLimit = .milliseconds(500)
        let client = try await LearnStoreClient(configuration)
        let subscription = client.feed.subscribe(from: .now)
        let reader = Task { try await Self.take(2, subscription) }
        let opened = server.server.context.metrics.snapshot.connectionsOpened
        // Generous: in a full suite run on two cores this test shares them with simulations.
        let replaced = await eventually(within: 60) { server.server.context.metrics.snapshot.connectionsOpened >= opened + 3 }
        #expect(replaced, "the silent subscription connection was closed and opened again")
        let records = try await server.client(connections: 1).performance.learningRecords
        for _ in 0..<2 { _ = try await records.create(sampleBody()) }
        #expect(try await reader.value.map(\.sequence) == [1, 2])
        try await server.stop()
    }

    /// The server goes away, its port first refuses the subscription's reconnects (a listener that
    /// closes every connection at once), then the server comes back there: the subscription, having
    /// failed and backed off, resumes right after its last change.
    @Test func aSubscriptionOutlastsFailedReconnectsAndResumesWhenTheServerReturns() async throws {
        let directory = TemporaryDirectory()
        var server = try await TestServer.start(persistence: Self.persistence(directory))
        let port = server.port
        var configuration = ClientConfiguration(host: "127.0.0.1", port: port, token: try await server.token(), connections: 1)
        configuration.feedSilenceLimit = .seconds(60)
        let client = try await LearnStoreClient(configuration)
        var writer = try await server.client(connections: 1)
        for _ in 0..<2 { _ = try await writer.performance.learningRecords.create(sampleBody()) }
        var changes = client.feed.subscribe(from: .after(0)).makeAsyncIterator()
        #expect(changes.receivedAt == nil)
        let beforeFirst = NIODeadline.now()
        for expected in UInt64(1)...2 { #expect(try await changes.next()?.sequence == expected) }
        let receivedAt = try #require(changes.receivedAt)
        #expect(receivedAt >= beforeFirst && receivedAt <= .now(), "when the event loop read the change")
        // The next change is read in a task: it waits through the outage.
        let later = Task {
            var iterator = changes
            var sequences: [UInt64] = []
            while sequences.count < 2, let change = try await iterator.next() { sequences.append(change.sequence) }
            return sequences
        }
        await writer.shutdown()
        try await server.stop()

        let refused = Atomic<Int>(0)
        let refusing = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                refused.add(1, ordering: .relaxed)
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: port).get()
        let retried = await eventually(within: 30) { refused.load(ordering: .relaxed) >= 2 }
        #expect(retried, "the subscription tried again after a failed reconnect")
        try await refusing.close()

        server = try await TestServer.start(configure: { $0.port = port }, persistence: Self.persistence(directory))
        writer = try await server.client(connections: 1)
        for _ in 0..<2 { _ = try await writer.performance.learningRecords.create(sampleBody()) }
        #expect(try await later.value == [3, 4], "resumed exactly after the last change it had")
        await writer.shutdown()
        await client.shutdown()
        try await server.stop()
    }

    @Test func fromNowStartsAfterTheCommittedSequence() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        let records = client.performance.learningRecords
        for _ in 0..<3 { _ = try await records.create(sampleBody()) }
        let subscription = client.feed.subscribe(from: .now)
        let reader = Task { try await Self.take(1, subscription) }
        // Writes until the subscription, made meanwhile, sees one: it never sees the first three.
        let writer = Task {
            while !Task.isCancelled {
                _ = try? await records.create(sampleBody())
                await pollInterval()
            }
        }
        let seen = try await reader.value
        writer.cancel()
        #expect(seen.count == 1 && seen[0].sequence >= 4)
        try await server.stop()
    }

    @Test func anAppTokenSeesOnlyItsAppsRecords() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let mine = try await server.client(app: "app_one")
        let theirs = try await server.client(app: "app_two")
        _ = try await mine.performance.learningRecords.create(sampleBody(title: "mine 1"))
        _ = try await theirs.performance.learningRecords.create(sampleBody(title: "theirs"))
        _ = try await mine.performance.learningRecords.create(sampleBody(title: "mine 2"))
        let changes = try await Self.take(2, mine.feed.subscribe(from: .after(0)))
        #expect(changes.map(\.sequence) == [1, 3], "sequence 2 is another app's write: skipped, not shown")
        for change in changes {
            guard case .records(_, let records) = change.parts[0] else { Issue.record("no records"); continue }
            #expect(records.allSatisfy { $0.appID == "app_one" })
        }
        try await server.stop()
    }

    @Test func aSequenceAheadOfTheTenantIsAValidationError() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        _ = try await client.performance.learningRecords.create(sampleBody())
        do {
            _ = try await Self.take(1, client.feed.subscribe(from: .after(5)))
            Issue.record("a subscription after a sequence the tenant has not reached was accepted")
        } catch let error as LearnStoreError {
            #expect(error.code == .validation && error.field == "sequence")
        }
        try await server.stop()
    }

    @Test func changesOutsideTheWindowAreTruncatedAndInsideItSurviveARestart() async throws {
        for retention in [FeedRetention.none, .standard] {
            let directory = TemporaryDirectory()
            var server = try await TestServer.start(persistence: Self.persistence(directory, retention: retention))
            var client = try await server.client()
            // 100 writes of 100 records fill a few 1 MiB segments.
            for _ in 0..<100 { _ = try await client.performance.learningRecords.createBatch(Array(repeating: sampleBody(), count: 100)) }
            await client.shutdown()
            // The graceful stop snapshots every tenant; retention may then drop the covered segments.
            try await server.stop()
            server = try await TestServer.start(persistence: Self.persistence(directory, retention: retention))
            client = try await server.client()
            _ = try await client.admin.snapshot(force: true)
            if retention == .none {
                do {
                    _ = try await Self.take(1, client.feed.subscribe(from: .after(0)))
                    Issue.record("the first changes were removed with their segments, yet the feed served them")
                } catch let truncated as FeedTruncated {
                    #expect(truncated.error.code == .feedTruncated)
                    #expect(truncated.oldestSequence > 0 && truncated.oldestSequence <= 100)
                }
            } else {
                let changes = try await Self.take(100, client.feed.subscribe(from: .after(0), credit: 30))
                #expect(changes.map(\.sequence) == Array(1...100))
            }
            await client.shutdown()
            try await server.stop()
        }
    }

    /// Reads FEED_EVENTS frames until `count` changes have come; returns their sequences.
    static func receiveChanges(_ raw: RawConnection, count: Int) async throws -> [UInt64] {
        var sequences: [UInt64] = []
        while sequences.count < count {
            let frame = try #require(await raw.receiveFrame())
            #expect(raw.error(of: frame) == nil, "\(String(describing: raw.error(of: frame)))")
            guard frame.header.opcode == Opcode.feedEvents else { continue }
            let batch = try frame.payload.withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeBatch(from: &r) }
            sequences += batch.changes.map(\.sequence)
        }
        return sequences
    }

    @Test func theServerSendsNoMoreChangesThanTheSubscriberGranted() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        for _ in 0..<50 { _ = try await client.performance.learningRecords.create(sampleBody()) }
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token())?.header.isError == false)
        raw.send(RawConnection.frame(Opcode.subscribe, id: 9) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .after(0), credit: 3), into: &$0) })
        let answer = try #require(await raw.receiveFrame())
        let subscribed = try answer.payload.withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeSubscribeResponse(from: &r) }
        #expect(subscribed.afterSequence == 0 && subscribed.tenantSequence == 50)
        // Three credits: three changes. Were a fourth sent, it would come before the two granted next.
        #expect(try await Self.receiveChanges(raw, count: 3) == [1, 2, 3])
        raw.send(RawConnection.frame(Opcode.feedCredit, id: 0) { FeedMessages.encodeCredit(2, into: &$0) })
        #expect(try await Self.receiveChanges(raw, count: 2) == [4, 5])
        raw.send(RawConnection.frame(Opcode.feedCredit, id: 0) { FeedMessages.encodeCredit(1000, into: &$0) })
        #expect(try await Self.receiveChanges(raw, count: 45) == Array(6...50))
        // A subscribed connection takes nothing but FEED_CREDIT and PING.
        raw.send(RawConnection.frame(Opcode.get, id: 11) { _ in })
        var refusal: LearnStoreError?
        while refusal == nil, let frame = await raw.receiveFrame() { refusal = raw.error(of: frame) }
        #expect(refusal?.code == .badFrame)
        #expect(await raw.isClosedByPeer())
        try await server.stop()
    }

    /// A caught-up subscriber reads memory; one that stops reading falls behind what memory holds (eight
    /// records here) and reads the files again, then memory once more: every change once, in order.
    @Test func aSubscriberBehindWhatMemoryHoldsReadsTheFilesAndComesBack() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(configure: { $0.feedMemoryRecordsPerTenant = 8 }, persistence: Self.persistence(directory))
        let client = try await server.client()
        let records = client.performance.learningRecords
        for _ in 0..<5 { _ = try await records.create(sampleBody()) }
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token())?.header.isError == false)
        raw.send(RawConnection.frame(Opcode.subscribe, id: 9) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .after(0), credit: 7), into: &$0) })
        _ = try #require(await raw.receiveFrame())
        #expect(try await Self.receiveChanges(raw, count: 5) == Array(1...5), "from the files")
        for _ in 0..<2 { _ = try await records.create(sampleBody()) }
        #expect(try await Self.receiveChanges(raw, count: 2) == [6, 7], "from memory")
        for _ in 0..<60 { _ = try await records.create(sampleBody()) }
        raw.send(RawConnection.frame(Opcode.feedCredit, id: 0) { FeedMessages.encodeCredit(1000, into: &$0) })
        #expect(try await Self.receiveChanges(raw, count: 60) == Array(8...67), "memory held the last eight: the rest came from the files")
        for _ in 0..<3 { _ = try await records.create(sampleBody()) }
        #expect(try await Self.receiveChanges(raw, count: 3) == [68, 69, 70])
        let statistics = server.application.context.feed.statistics
        #expect(statistics.fellBehindMemory == 1)
        #expect(statistics.changesFromMemory >= 5 && statistics.changesFromMemory <= 13, "6, 7, the last eight at most, 68 to 70")
        #expect(server.application.context.feed.recentRecordsHeld <= 8)
        try await server.stop()
    }

    @Test func aRestoreReachesALiveSubscriberAsOneChange() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let client = try await server.client()
        let records = client.performance.learningRecords
        for _ in 0..<3 { _ = try await records.create(sampleBody()) }
        _ = try await client.admin.snapshot(force: true)
        _ = try await records.create(sampleBody())
        let subscription = client.feed.subscribe(from: .after(4))
        let reader = Task { try await Self.take(2, subscription) }
        let report = try await client.admin.restoreTenant(RestoreTenantRequest(dryRun: false, snapshotSequence: 3, sequence: nil, time: nil))
        #expect(report.newSequence == 5)
        _ = try await records.create(sampleBody())
        let changes = try await reader.value
        #expect(changes.map(\.sequence) == [5, 6])
        #expect(changes.map(Self.kinds) == [["tenant_restore"], ["create"]])
        try await server.stop()
    }

    @Test func refusedSubscriptionsLeaveAnOrdinaryConnectionAndFeedOpcodesNeedASubscription() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token(scopes: [.recordsWrite]))?.header.isError == false)
        raw.send(RawConnection.frame(Opcode.subscribe, id: 3) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .now, credit: 1), into: &$0) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .forbidden, "no read scope")
        raw.send(RawConnection.frame(Opcode.feedCredit, id: 4) { FeedMessages.encodeCredit(1, into: &$0) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .unknownOpcode, "FEED_CREDIT outside a subscription")
        raw.send(RawConnection.frame(Opcode.subscribe, id: 5) { $0.writeU8(7) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .badFrame)
        raw.send(RawConnection.frame(Opcode.ping, id: 6) { $0.writeU8(1) })
        let pong = try #require(await raw.receiveFrame())
        #expect(pong.header.opcode == Opcode.ping && !pong.header.isError, "the connection still serves requests")
        try await server.stop()
    }

    @Test func theTenantAndServerLimitsRefuseWithOverloaded() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(configure: { $0.maximumFeedSubscriptionsPerTenant = 1 }, persistence: Self.persistence(directory))
        let first = try RawConnection(port: server.port)
        #expect(await first.handshake(token: try await server.token())?.header.isError == false)
        first.send(RawConnection.frame(Opcode.subscribe, id: 3) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .now, credit: 1), into: &$0) })
        #expect(try #require(await first.receiveFrame()).header.isError == false)
        let second = try RawConnection(port: server.port)
        #expect(await second.handshake(token: try await server.token())?.header.isError == false)
        second.send(RawConnection.frame(Opcode.subscribe, id: 3) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .now, credit: 1), into: &$0) })
        #expect(second.error(of: try #require(await second.receiveFrame()))?.code == .overloaded)
        #expect(await second.isClosedByPeer())
        // Another tenant has its own count.
        let other = try RawConnection(port: server.port)
        #expect(await other.handshake(token: try await server.token(tenant: "tenant_b"))?.header.isError == false)
        other.send(RawConnection.frame(Opcode.subscribe, id: 3) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .now, credit: 1), into: &$0) })
        #expect(try #require(await other.receiveFrame()).header.isError == false)
        // A closed subscription frees its place.
        first.closeNow()
        let freed = await eventually(within: 10) { server.server.context.feed.subscriptions == 1 }
        #expect(freed)
        let info = try await server.client().info()
        #expect(info["feed_subscriptions"] == .number("1"), "INFO counts the open subscriptions for an admin")
        try await server.stop()
    }

    @Test func subscribersOfManyTenantsJoiningWhileTheyWriteEachGetTheirTenantsChangesOnce() async throws {
        let directory = TemporaryDirectory()
        let server = try await TestServer.start(persistence: Self.persistence(directory))
        let tenants = ["t_a", "t_b", "t_c", "t_d"]
        var clients: [LearnStoreClient] = []
        for tenant in tenants { clients.append(try await server.client(tenant: tenant, connections: 1)) }
        let perTenant = 150
        let writers = clients.map { client in
            Task {
                for index in 0..<perTenant { _ = try await client.performance.learningRecords.create(sampleBody(title: "w\(index)")) }
            }
        }
        // Per tenant: one subscriber from the start, one that joins later from where the first 20 end
        // (small credit, so it reads behind while the other follows the newest commits).
        var readers: [Task<[UInt64], any Error>] = []
        for client in clients {
            let early = client.feed.subscribe(from: .after(0), credit: 64)
            readers.append(Task { try await Self.take(perTenant, early).map(\.sequence) })
            let late = client.feed.subscribe(from: .after(20), credit: 3)
            readers.append(Task {
                while try await client.performance.learningRecords.stats()["sequence"]?.doubleValue ?? 0 < 40 {
                    await pollInterval()
                }
                return try await Self.take(perTenant - 20, late).map(\.sequence)
            })
        }
        for writer in writers { try await writer.value }
        for (index, reader) in readers.enumerated() {
            let sequences = try await reader.value
            let expected = index % 2 == 0 ? Array(1...UInt64(perTenant)) : Array(21...UInt64(perTenant))
            #expect(sequences == expected, "subscriber \(index) of tenant \(tenants[index / 2])")
        }
        #expect(server.server.context.feed.subscriptions <= 8)
        try await server.stop()
    }
}
