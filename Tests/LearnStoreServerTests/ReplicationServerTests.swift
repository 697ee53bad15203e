import LearnStoreClient
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// Replication end to end: real servers with their WALs on loopback, the real client, the real
/// replication port.
@Suite struct ReplicationServerTests {
    static let secret = Array("replication-test-secret-0123456789".utf8)

    static func node(_ id: String, follow: [String] = [], minimumInSync: Int = 1) -> (inout ServerConfiguration) -> Void {
        { configuration in
            var replication = ReplicationConfiguration(nodeID: id, port: 0, secret: secret)
            replication.follow = follow
            replication.replicaSet.minimumInSync = minimumInSync
            configuration.replication = replication
        }
    }

    static func replicationAddress(_ server: TestServer) async throws -> String {
        "127.0.0.1:\(try await server.application.replicationListener!.localAddress.port!)"
    }

    static func status(_ address: String, secret: [UInt8] = secret) async throws -> JSONValue {
        let answer = try await NodeClient.request(
            address, credential: try NodeCredential(secret: secret), nodeID: "operator", opcode: ReplicationOpcode.status,
            group: MultiThreadedEventLoopGroup.singleton)
        return try JSONValue.parse(try answer.reply!.readPayload { (r) throws(DecodeError) in try r.readString() })
    }

    /// A primary "a" and a replica "b" that follows it, each on a data directory of its own.
    struct Pair {
        let primary: TestServer
        let replica: TestServer
        let primaryAddress: String
        let directories: [TemporaryDirectory]

        func stop() async throws {
            try await replica.stop()
            try await primary.stop()
        }
    }

    static func startPair(primary configure: @escaping (inout ServerConfiguration) -> Void = node("a")) async throws -> Pair {
        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let primary = try await TestServer.start(configure: configure, persistence: .forTests(directories[0].path))
        let address = try await replicationAddress(primary)
        let replica = try await TestServer.start(configure: node("b", follow: [address]), persistence: .forTests(directories[1].path))
        return Pair(primary: primary, replica: replica, primaryAddress: address, directories: directories)
    }

    @Test func everyAcknowledgedWriteIsAlreadyReadableOnTheReplica() async throws {
        let pair = try await Self.startPair()
        let (primary, replica) = (pair.primary, pair.replica)
        let writer = try await primary.client()
        let reader = try await replica.client()
        for index in 0..<40 {
            // Acknowledged only once the in-sync replica has it durable, and it applies before it acknowledges.
            let created = try await writer.performance.learningRecords.create(sampleBody(title: "course \(index)"))
            let copy = try await reader.performance.learningRecords.get(created.value.id)
            #expect(copy == created.value)
        }
        let status = try await Self.status(try await Self.replicationAddress(primary))
        #expect(status["in_sync"] == .array([.string("b")]))
        await writer.shutdown()
        await reader.shutdown()
        try await pair.stop()
    }

    /// A write the replica holds durable but the primary has not acknowledged (it waits for a second
    /// in-sync replica) may still be cut by a failover: the replica does not show it until the
    /// primary's commit mark covers it.
    @Test func aReplicaShowsAWriteOnlyOnceThePrimaryAcknowledgedIt() async throws {
        let pair = try await Self.startPair(primary: Self.node("a", minimumInSync: 2))
        let (primary, replica) = (pair.primary, pair.replica)
        let replicaAddress = try await Self.replicationAddress(replica)
        let writer = try await primary.client()
        let pending = Task { try await writer.performance.learningRecords.create(sampleBody(title: "waits for two replicas")) }
        #expect(await eventually(within: 30) {
            let status = try? await Self.status(replicaAddress)
            return (status?["durable_lsn"]?.int64Value ?? 0) >= 1
        })
        let held = try await Self.status(replicaAddress)
        #expect((held["committed_lsn"]?.int64Value ?? .max) < (held["durable_lsn"]?.int64Value ?? 0))

        let third = TemporaryDirectory()
        let c = try await TestServer.start(configure: Self.node("c", follow: [pair.primaryAddress]), persistence: .forTests(third.path))
        let created = try await pending.value
        #expect(await eventually(within: 30) {
            let status = try? await Self.status(replicaAddress)
            return (status?["committed_lsn"]?.int64Value ?? 0) >= 1
        })
        let reader = try await replica.client()
        #expect(try await reader.performance.learningRecords.get(created.value.id) == created.value)
        for try await change in reader.feed.subscribe(from: .after(0)) {
            #expect(change.sequence == created.sequence)
            break
        }
        await reader.shutdown()
        await writer.shutdown()
        try await c.stop()
        try await pair.stop()
    }

    /// A subscriber given the replica's address besides the primary's moves there when the primary
    /// stops, and goes on after the replica is promoted: every change once, in order.
    @Test func aFeedSubscriberFollowsAFailoverToThePromotedReplica() async throws {
        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let a = try await TestServer.start(configure: Self.node("a"), persistence: .forTests(directories[0].path))
        let aAddress = try await Self.replicationAddress(a)
        // Once promoted, b acknowledges alone (it has no replica here).
        let b = try await TestServer.start(configure: Self.node("b", follow: [aAddress], minimumInSync: 0), persistence: .forTests(directories[1].path))
        let writer = try await a.client()
        var written: [UInt64] = []
        for index in 0..<3 { written.append(try await writer.performance.learningRecords.create(sampleBody(title: "before \(index)")).sequence) }
        await writer.shutdown()

        let subscriber = try await a.client()
        let changes = subscriber.feed.subscribe(from: .after(0), alsoAt: ["127.0.0.1:\(b.port)"])
        let collecting = Task {
            var sequences: [UInt64] = []
            for try await change in changes {
                sequences.append(change.sequence)
                if sequences.count == 5 { break }
            }
            return sequences
        }
        #expect(await eventually(within: 30) { (try? await Self.status(aAddress))?["in_sync"] == .array([.string("b")]) })
        try await a.stop()
        var payload = ByteWriter(capacity: 24)
        ReplicationMessages.encode(PromoteRequest(epoch: 0, promotion: .zero), into: &payload)
        _ = try await NodeClient.request(
            try await Self.replicationAddress(b), credential: try NodeCredential(secret: Self.secret), nodeID: "operator",
            opcode: ReplicationOpcode.promote, payload: payload.bytes, group: MultiThreadedEventLoopGroup.singleton)
        let promoted = try await b.client()
        for index in 0..<2 { written.append(try await promoted.performance.learningRecords.create(sampleBody(title: "after \(index)")).sequence) }
        #expect(try await collecting.value == written)
        #expect(written == [1, 2, 3, 4, 5])
        await promoted.shutdown()
        await subscriber.shutdown()
        try await b.stop()
    }

    /// `learnstore bench --subscribers N --subscribe-port REPLICA`: writes on the primary, every
    /// acknowledged one delivered to the subscribers on the replica.
    @Test func theLoadToolsSubscribersFollowTheWritesOnAReplica() async throws {
        let pair = try await Self.startPair()
        var configuration = BenchConfiguration(credentials: .token(try await pair.primary.token()))
        configuration.port = pair.primary.port
        configuration.subscribePort = pair.replica.port
        configuration.subscribers = 1
        configuration.tenants = 1
        configuration.connections = 2
        configuration.mix = [(.create, 1)]
        configuration.durationSeconds = 1
        configuration.warmupSeconds = 0
        let report = try await BenchRunner(configuration: configuration).run()
        let feed = try #require(report.feed)
        #expect(report.total > 0 && feed.changes > 0)
        #expect(feed.undelivered == 0)
        try await pair.stop()
    }

    @Test func aReplicaRefusesClientWritesWithNotPrimaryAndAnOutsiderWithoutTheSecret() async throws {
        let pair = try await Self.startPair()
        let (primary, replica, primaryAddress) = (pair.primary, pair.replica, pair.primaryAddress)
        let client = try await replica.client()
        let refusal = await #expect(throws: LearnStoreError.self) {
            _ = try await client.performance.learningRecords.create(sampleBody())
        }
        #expect(refusal?.code == .notPrimary)
        let writer = try await primary.client()
        _ = try await writer.performance.learningRecords.create(sampleBody())
        await writer.shutdown()
        let outsider = try NodeCredential(secret: Array("some-other-secret-0123456789".utf8))
        let unknown = await #expect(throws: LearnStoreError.self) {
            _ = try await NodeClient.request(primaryAddress, credential: outsider, nodeID: "intruder", opcode: ReplicationOpcode.status,
                                             group: MultiThreadedEventLoopGroup.singleton)
        }
        #expect(unknown?.code == .unauthenticated)
        await client.shutdown()
        try await pair.stop()
    }

    /// A primary that acknowledges alone (`--min-in-sync-replicas 0`) loses what it wrote alone when a
    /// replica is promoted over it; it rejoins as a replica, cutting exactly those writes, and ends up
    /// identical to the new primary.
    @Test func aPromotedReplicaLeadsANewEpochAndTheOldPrimaryRejoinsWithoutWhatItWroteAlone() async throws {
        let aDirectory = TemporaryDirectory()
        let bDirectory = TemporaryDirectory()
        var a = try await TestServer.start(configure: Self.node("a", minimumInSync: 0), persistence: .forTests(aDirectory.path))
        let aAddress = try await Self.replicationAddress(a)
        var b = try await TestServer.start(configure: Self.node("b", follow: [aAddress]), persistence: .forTests(bDirectory.path))
        var writer = try await a.client()
        var shared: [LearningRecord] = []
        for index in 0..<10 { shared.append(try await writer.performance.learningRecords.create(sampleBody(title: "shared \(index)")).value) }
        // Wait until b is in sync, so the shared writes are all on b.
        #expect(await eventually(within: 30) { (try? await Self.status(aAddress))?["in_sync"] == .array([.string("b")]) })
        try await b.stop()
        var alone: [RecordID] = []
        for index in 0..<5 { alone.append(try await writer.performance.learningRecords.create(sampleBody(title: "alone \(index)")).value.id) }
        await writer.shutdown()
        try await a.stop()

        b = try await TestServer.start(configure: Self.node("b", follow: [aAddress], minimumInSync: 0), persistence: .forTests(bDirectory.path))
        let bAddress = try await Self.replicationAddress(b)
        var payload = ByteWriter(capacity: 24)
        ReplicationMessages.encode(PromoteRequest(epoch: 0, promotion: .zero), into: &payload)
        let promoted = try await NodeClient.request(
            bAddress, credential: try NodeCredential(secret: Self.secret), nodeID: "operator", opcode: ReplicationOpcode.promote,
            payload: payload.bytes, group: MultiThreadedEventLoopGroup.singleton)
        let reply = try promoted.reply!.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromoteReply(from: &r) }
        #expect(reply.epoch == 2)
        writer = try await b.client()
        let after = try await writer.performance.learningRecords.create(sampleBody(title: "epoch 2")).value

        a = try await TestServer.start(configure: Self.node("a", follow: [bAddress]), persistence: .forTests(aDirectory.path))
        let reader = try await a.client()
        #expect(await eventually(within: 30) { (try? await reader.performance.learningRecords.get(after.id)) != nil })
        for record in shared { #expect(try await reader.performance.learningRecords.get(record.id) == record) }
        for id in alone {
            let missing = await #expect(throws: LearnStoreError.self) { _ = try await reader.performance.learningRecords.get(id) }
            #expect(missing?.code == .notFound)
        }
        let aStatus = try await Self.status(try await Self.replicationAddress(a))
        #expect(aStatus["role"] == .string("replica"))
        #expect(aStatus["epoch"] == .number("2"))
        await reader.shutdown()
        await writer.shutdown()
        try await a.stop()
        try await b.stop()
    }

    /// A replica that promised a newer epoch to a promotion takes and acknowledges nothing more of its
    /// primary (a promotion chooses the new primary from what the promising nodes hold), and the
    /// primary, refused when the replica comes back for the stream, fences itself: it would otherwise
    /// answer the controller's checks as a primary while it can acknowledge nothing.
    @Test func aReplicaThatPromisedANewerEpochStopsFollowingAndThePrimaryFencesItself() async throws {
        let pair = try await Self.startPair()
        let writer = try await pair.primary.client()
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "before"))
        #expect(await eventually(within: 30) { (try? await Self.status(pair.primaryAddress))?["in_sync"] == .array([.string("b")]) })
        var payload = ByteWriter(capacity: 24)
        ReplicationMessages.encode(PromoteRequest(epoch: 7, promotion: .random()), into: &payload)
        _ = try await NodeClient.request(
            try await Self.replicationAddress(pair.replica), credential: try NodeCredential(secret: Self.secret), nodeID: "operator",
            opcode: ReplicationOpcode.promise, payload: payload.bytes, group: MultiThreadedEventLoopGroup.singleton)
        #expect(await eventually(within: 30) { (try? await Self.status(pair.primaryAddress))?["role"] == .string("fenced") })
        let refused = await #expect(throws: LearnStoreError.self) { _ = try await writer.performance.learningRecords.create(sampleBody(title: "after")) }
        #expect(refused?.code == .notPrimary)
        await writer.shutdown()
        try await pair.stop()
    }

    /// A write the primary made durable but its replica never acknowledged (the replica stopped) waits;
    /// when a promotion fences the primary, the write is answered OUTCOME_UNKNOWN at once, not left
    /// waiting until the node restarts or the client gives up.
    @Test func aWriteWaitingForItsReplicaIsAnsweredOutcomeUnknownWhenThePrimaryIsFenced() async throws {
        let pair = try await Self.startPair()
        var configuration = ClientConfiguration(port: pair.primary.port, token: try await pair.primary.token(), connections: 1)
        configuration.requestTimeout = .seconds(90)
        let writer = try await LearnStoreClient(configuration)
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "before"))
        #expect(await eventually(within: 30) { (try? await Self.status(pair.primaryAddress))?["in_sync"] == .array([.string("b")]) })
        try await pair.replica.stop()
        let before = try await Self.status(pair.primaryAddress)["durable_lsn"]?.int64Value ?? 0
        let held = Task { () -> LearnStoreError? in
            do throws(LearnStoreError) {
                _ = try await writer.performance.learningRecords.create(sampleBody(title: "held"))
                return nil
            } catch {
                return error
            }
        }
        // Durable on the primary, unacknowledged: no replica takes it.
        #expect(await eventually(within: 30) { ((try? await Self.status(pair.primaryAddress))?["durable_lsn"]?.int64Value ?? 0) > before })
        let promised = try await Self.ask(pair.primaryAddress, ReplicationOpcode.promise, epoch: 7, promotion: .random()).get()
        #expect(promised.header.isError == false)
        let answer = await held.value
        #expect(answer?.code == .outcomeUnknown, "\(String(describing: answer))")
        let refused = await #expect(throws: LearnStoreError.self) { _ = try await writer.performance.learningRecords.create(sampleBody(title: "after")) }
        #expect(refused?.code == .notPrimary)
        // Its change feed cannot start at the tenant's newest write: never acknowledged, it is no one's.
        let raw = try RawConnection(port: pair.primary.port)
        #expect(await raw.handshake(token: try await pair.primary.token())?.header.isError == false)
        raw.send(RawConnection.frame(Opcode.subscribe, id: 3) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .now, credit: 1), into: &$0) })
        #expect(raw.error(of: try #require(await raw.receiveFrame()))?.code == .notPrimary)
        raw.closeNow()
        await writer.shutdown()
        try await pair.primary.stop()
    }

    /// A primary that can acknowledge nothing (its only replica stopped, one required) holds a write;
    /// a `ClusterClient` gives up with TIMEOUT after the request timeout rather than trying again, which
    /// would hold it as long again each time.
    @Test func aClusterClientGivesUpWithTimeoutOnAPrimaryThatCannotAcknowledge() async throws {
        let pair = try await Self.startPair()
        var configuration = ClientConfiguration(token: try await pair.primary.token(), connections: 1)
        configuration.requestTimeout = .seconds(2)
        let client = ClusterClient(seeds: ["127.0.0.1:\(pair.primary.port)"], configuration: configuration, attempts: 5)
        _ = try await client.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.create(sampleBody(title: "before")) }
        try await pair.replica.stop()
        let clock = ContinuousClock()
        let started = clock.now
        let held = await #expect(throws: LearnStoreError.self) {
            _ = try await client.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.create(sampleBody(title: "held")) }
        }
        #expect(held?.code == .timeout, "\(String(describing: held))")
        #expect(clock.now - started < .seconds(30), "tried once, not once per attempt")
        await client.shutdown()
        try await pair.primary.stop()
    }

    /// A write larger than the replica's frame limit still reaches it, whole: RECORDS frames carry any
    /// record a log takes, or the replica could never take that write and its primary would stop
    /// acknowledging.
    @Test func aWriteLargerThanTheReplicasFrameLimitReachesIt() async throws {
        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let primary = try await TestServer.start(configure: { configuration in
            Self.node("a")(&configuration)
            configuration.acknowledgementTimeoutSeconds = 5
        }, persistence: .forTests(directories[0].path))
        let address = try await Self.replicationAddress(primary)
        let replica = try await TestServer.start(configure: { configuration in
            Self.node("b", follow: [address])(&configuration)
            configuration.replication?.maximumFrameBytes = 64 << 10
        }, persistence: .forTests(directories[1].path))
        let writer = try await primary.client()
        let bodies = (0..<400).map { sampleBody(title: "\($0)-" + String(repeating: "x", count: 400)) }
        let created = try await writer.performance.learningRecords.createBatch(bodies)
        #expect(created.value.count == 400)
        let reader = try await replica.client()
        #expect(await eventually(within: 30) { (try? await reader.performance.learningRecords.stats()["sequence"]) == .number("1") })
        await reader.shutdown()
        await writer.shutdown()
        try await replica.stop()
        try await primary.stop()
    }

    /// A seed that accepts connections and closes them at once (a node on its way down) is tried once
    /// per question: the cluster client asks the next seed rather than reconnecting with backoff.
    @Test func aClusterClientMovesOnFromASeedThatCloses() async throws {
        let pair = try await Self.startPair()
        let accepted = Atomic<Int>(0)
        let closing = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.add(1, ordering: .relaxed)
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let seeds = ["127.0.0.1:\(closing.localAddress!.port!)", "127.0.0.1:\(pair.primary.port)"]
        let client = ClusterClient(seeds: seeds, configuration: ClientConfiguration(token: try await pair.primary.token()), attempts: 2)
        let created = try await client.run { (c) throws(LearnStoreError) in try await c.performance.learningRecords.create(sampleBody(title: "through the second seed")) }
        #expect(created.value.title == "through the second seed")
        #expect(accepted.load(ordering: .relaxed) == 1, "one connection to the closing seed, no reconnects")
        await client.shutdown()
        try await closing.close()
        try await pair.stop()
    }

    /// A primary whose only replica stopped holds a write; past the acknowledgement timeout (1 s here,
    /// 30 s by default) the write is answered OUTCOME_UNKNOWN, and once the replica is back and has it
    /// the write is there: the error said "unknown", not "not applied".
    @Test func aWriteNoReplicaAcknowledgesIsAnsweredOutcomeUnknownAfterTheTimeout() async throws {
        let pair = try await Self.startPair(primary: { configuration in
            Self.node("a")(&configuration)
            configuration.acknowledgementTimeoutSeconds = 1
        })
        let writer = try await pair.primary.client()
        _ = try await writer.performance.learningRecords.create(sampleBody(title: "before"))
        try await pair.replica.stop()
        let overdue = await #expect(throws: LearnStoreError.self) {
            _ = try await writer.performance.learningRecords.create(sampleBody(title: "overdue"), idempotencyKey: "overdue")
        }
        #expect(overdue?.code == .outcomeUnknown, "\(String(describing: overdue))")
        let replica = try await TestServer.start(configure: Self.node("b", follow: [pair.primaryAddress]), persistence: .forTests(pair.directories[1].path))
        let retried = try await writer.performance.learningRecords.create(sampleBody(title: "overdue"), idempotencyKey: "overdue")
        #expect(retried.replayed, "the first attempt was applied; the retry with its key returns it")
        await writer.shutdown()
        try await replica.stop()
        try await pair.primary.stop()
    }

    /// PROMISE or PROMOTE to `address`: the answer's payload, or the error it carries.
    static func ask(_ address: String, _ opcode: UInt8, epoch: UInt64, promotion: UUID16) async throws -> Result<Frame, LearnStoreError> {
        var payload = ByteWriter(capacity: 24)
        ReplicationMessages.encode(PromoteRequest(epoch: epoch, promotion: promotion), into: &payload)
        let credential = try NodeCredential(secret: Self.secret)
        do throws(LearnStoreError) {
            let answer = try await NodeClient.request(
                address, credential: credential, nodeID: "operator", opcode: opcode, payload: payload.bytes, group: MultiThreadedEventLoopGroup.singleton)
            return .success(answer.reply!)
        } catch {
            return .failure(error)
        }
    }

    /// A node promises an epoch to one promotion, durably: another promotion that picked the same
    /// epoch is refused (before and after a restart) and cannot promote the node to it; the first is
    /// answered again when it retries.
    @Test func aNodePromisesAnEpochToOnePromotionOnly() async throws {
        let directory = TemporaryDirectory()
        var replica = try await TestServer.start(configure: Self.node("b", follow: ["127.0.0.1:1"]), persistence: .forTests(directory.path))
        var address = try await Self.replicationAddress(replica)
        let (first, second) = (UUID16.random(), UUID16.random())
        func promise(_ epoch: UInt64, _ promotion: UUID16) async throws -> PromiseReply {
            try await Self.ask(address, ReplicationOpcode.promise, epoch: epoch, promotion: promotion).get()
                .readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromiseReply(from: &r) }
        }
        #expect(try await promise(5, first) == PromiseReply(promised: 5, granted: true))
        #expect(try await promise(5, second) == PromiseReply(promised: 5, granted: false))
        #expect(try await promise(5, first) == PromiseReply(promised: 5, granted: true), "a retry")
        guard case .failure(let zero) = try await Self.ask(address, ReplicationOpcode.promise, epoch: 6, promotion: .zero) else {
            throw LearnStoreError(.internalError, "a zero promotion id was promised")
        }
        #expect(zero.code == .validation)
        try await replica.stop()
        replica = try await TestServer.start(configure: Self.node("b", follow: ["127.0.0.1:1"]), persistence: .forTests(directory.path))
        address = try await Self.replicationAddress(replica)
        #expect(try await promise(5, second) == PromiseReply(promised: 5, granted: false), "the promise survives a restart")
        let stolen = try await Self.ask(address, ReplicationOpcode.promote, epoch: 5, promotion: second)
        guard case .failure(let error) = stolen else { throw LearnStoreError(.internalError, "promoted by a promotion it did not promise") }
        #expect(error.code == .validation)
        let promoted = try await Self.ask(address, ReplicationOpcode.promote, epoch: 5, promotion: first).get()
            .readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromoteReply(from: &r) }
        #expect(promoted.epoch == 5)
        try await replica.stop()
    }

    @Test func aReplicaServesTheChangeFeedOfWhatItReplicated() async throws {
        let pair = try await Self.startPair()
        let (primary, replica) = (pair.primary, pair.replica)
        let writer = try await primary.client()
        let reader = try await replica.client()
        var created: [RecordID] = []
        for index in 0..<5 { created.append(try await writer.performance.learningRecords.create(sampleBody(title: "fed \(index)")).value.id) }
        var delivered: [RecordID] = []
        for try await change in reader.feed.subscribe(from: .after(0)) {
            for part in change.parts { if case .records(_, let records) = part { delivered += records.map(\.id) } }
            if delivered.count == created.count { break }
        }
        #expect(delivered == created)
        await writer.shutdown()
        await reader.shutdown()
        try await pair.stop()
    }

    @Test func aStrangerGetsOnlyASmallHandshakeFrame() async throws {
        let directory = TemporaryDirectory()
        let primary = try await TestServer.start(configure: Self.node("a"), persistence: .forTests(directory.path))
        let port = try await primary.application.replicationListener!.localAddress.port!
        let connection = try RawConnection(port: port)
        // A 2 KiB frame header before the handshake is refused before its body arrives.
        var header = ByteWriter(capacity: 10)
        header.writeU32(2048)
        header.writeU8(ReplicationOpcode.nodeHello)
        header.writeU8(0)
        header.writeU32(1)
        #expect(await connection.sendAsync(header.bytes))
        let answer = try #require(await connection.receiveFrame())
        #expect(answer.header.isError)
        #expect(try answer.payload.withByteReader { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }.code == .frameTooLarge)
        try await primary.stop()
    }

    @Test func thePrimarysMetricsShowTheInSyncSetTheLagAndWhatWasShipped() async throws {
        let pair = try await Self.startPair(primary: { configuration in
            Self.node("a")(&configuration)
            configuration.metricsPort = 0
        })
        let primary = pair.primary
        let writer = try await primary.client()
        for index in 0..<10 { _ = try await writer.performance.learningRecords.create(sampleBody(title: "metered \(index)")) }
        let scrape = try await Scrape.get(port: try #require(primary.metricsPort))
        #expect(scrape["learnstore_replication_role"] == 1)
        #expect(scrape["learnstore_replication_in_sync_replicas"] == 1)
        #expect((scrape["learnstore_replication_records_shipped_total"] ?? 0) >= 10)
        #expect((scrape["learnstore_replication_ack_seconds_count"] ?? 0) >= 1)
        #expect(scrape["learnstore_replication_replica_lag_lsns{replica=\"b\"}"] != nil)
        await writer.shutdown()
        try await pair.stop()
    }

    @Test func aReadAfterWaitSequenceOnAReplicaSeesTheWriteAndAFutureSequenceIsNotYet() async throws {
        // Asynchronous: the primary acknowledges before the replica has the write, so the wait matters.
        let pair = try await Self.startPair(primary: { configuration in
            Self.node("a")(&configuration)
            configuration.replication?.replicaSet.mode = .async
        })
        let (primary, replica) = (pair.primary, pair.replica)
        let writer = try await primary.client()
        let reader = try await replica.client()
        for index in 0..<20 {
            let created = try await writer.performance.learningRecords.create(sampleBody(title: "ryw \(index)"))
            let reached = try await reader.waitForSequence(created.sequence, timeout: .seconds(30))
            #expect(reached >= created.sequence)
            #expect(try await reader.performance.learningRecords.get(created.value.id) == created.value)
        }
        let notYet = await #expect(throws: LearnStoreError.self) { _ = try await reader.waitForSequence(1_000_000, timeout: .milliseconds(50)) }
        #expect(notYet?.code == .notYet)
        let tooLong = await #expect(throws: LearnStoreError.self) { _ = try await reader.waitForSequence(1, timeout: .seconds(61)) }
        #expect(tooLong?.code == .validation)
        await writer.shutdown()
        await reader.shutdown()
        try await pair.stop()
    }

    /// Strangers send random bytes and random frames of every replication opcode before proving the
    /// secret, and nodes that proved it send malformed requests: each gets a typed error or a closed
    /// connection, and the primary goes on replicating.
    @Test func randomBytesBeforeTheHandshakeLeaveThePrimaryReplicating() async throws {
        let pair = try await Self.startPair()
        let (primary, replica, address) = (pair.primary, pair.replica, pair.primaryAddress)
        let port = try await primary.application.replicationListener!.localAddress.port!
        var random = SeededGenerator(seed: 0x5EED_B0)
        for _ in 0..<150 {
            let connection = try RawConnection(port: port)
            var bytes: [UInt8] = []
            if random.chance(1, in: 2) {
                // A frame of a replication opcode with a random payload (within the pre-auth limit or not).
                let payload = (0..<random.next(below: 1_300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                var writer = ByteWriter(capacity: payload.count + 10)
                writer.writeFrame(FrameHeader(opcode: 0xB0 + UInt8(random.next(below: 10)), requestID: 1), payload: { $0.writeBytes(payload) })
                bytes = writer.bytes
            } else {
                bytes = (0..<random.next(below: 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            _ = await connection.sendAsync(bytes)
            connection.closeNow()
        }
        // Nodes with the secret sending malformed requests (too short to decode as REPLICATE; PROMISE and
        // PROMOTE left out, they are the operator's powers) get typed errors.
        let credential = try NodeCredential(secret: Self.secret)
        for _ in 0..<40 {
            let opcode = [ReplicationOpcode.nodeHello, ReplicationOpcode.nodeAuth, ReplicationOpcode.replicate, ReplicationOpcode.records,
                          ReplicationOpcode.ack, ReplicationOpcode.status, ReplicationOpcode.catchUp, ReplicationOpcode.partitionExport, 0xBA, 0x01][random.next(below: 10)]
            let payload = (0..<random.next(below: 36)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            do {
                _ = try await NodeClient.request(address, credential: credential, nodeID: "noisy", opcode: opcode, payload: payload,
                                                 group: MultiThreadedEventLoopGroup.singleton)
            } catch {
                // A PARTITION_EXPORT that decodes, to a node outside a partition map, is VALIDATION.
                #expect([.badFrame, .unknownOpcode, .unauthenticated, .connectionFailed].contains(error.code)
                    || (opcode == ReplicationOpcode.partitionExport && error.code == .validation), "\(error)")
            }
        }
        let writer = try await primary.client()
        let created = try await writer.performance.learningRecords.create(sampleBody(title: "after the noise"))
        let status = try await Self.status(address)
        #expect(status["role"] == .string("primary"))
        #expect(status["in_sync"] == .array([.string("b")]))
        let reader = try await replica.client()
        #expect(try await reader.performance.learningRecords.get(created.value.id) == created.value)
        await writer.shutdown()
        await reader.shutdown()
        try await pair.stop()
    }
}
