import Foundation
import LearnStoreClient
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Testing

/// A partition moves between two one-node groups with a real etcd: its tenants' records, deleted
/// records, idempotency keys and sequences arrive whole in the new group, the old group refuses their
/// writes from the start of the move and sends their clients on afterwards, and the tenants of the
/// partitions that stay are not touched.
@Suite struct PartitionMoveTests {
    static let map = PartitionedClusterTests.map

    /// Two tenants of one partition of group ga, and a tenant of another partition of ga.
    static func tenants() -> (moving: [String], staying: String, partition: Int) {
        let inGA = (0...).lazy.map { "tenant-\($0)" }.filter { map.group(of: $0) == "ga" }
        let first = inGA.first(where: { _ in true })!
        let partition = map.partition(of: first)
        let second = inGA.first(where: { $0 != first && map.partition(of: $0) == partition })!
        let staying = inGA.first(where: { map.partition(of: $0) != partition })!
        return ([first, second], staying, partition)
    }

    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aPartitionMovesWithItsRecordsKeysAndSequencesAndTheOldGroupSendsClientsOn() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-move-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let endpoints = etcd.map(\.clientURL)
        let store = try EtcdClient(endpoints: endpoints, group: MultiThreadedEventLoopGroup.singleton)
        let key = ClusterConfiguration.partitionMapKey("move-map")
        #expect(try await store.transaction(if: [.createRevision(key, 0)], put: [(key, Self.map.encoded, 0)]))

        let directories = [TemporaryDirectory(), TemporaryDirectory()]
        let a = try await TestServer.start(
            configure: PartitionedClusterTests.node("a0", group: "ga", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "move-map"),
            persistence: .forTests(directories[0].path))
        let gbNode = PartitionedClusterTests.node("b0", group: "gb", port: try FailoverTester.freePort(), etcd: endpoints, mapName: "move-map")
        let b = try await TestServer.start(configure: { configuration in
            gbNode(&configuration)
            configuration.metricsPort = 0
        }, persistence: .forTests(directories[1].path))
        let (moving, staying, partition) = Self.tenants()

        // The moving tenants: more records than one export piece holds, a deleted one, an idempotency key.
        var before: [String: (stats: JSONValue, sample: [LearningRecord], keyed: LearningRecord)] = [:]
        var clientsOnA: [String: LearnStoreClient] = [:]
        for tenant in moving {
            let client = try await a.client(tenant: tenant)
            clientsOnA[tenant] = client
            let records = client.performance.learningRecords
            var created: [LearningRecord] = []
            for batch in 0..<3 {
                created += try await records.createBatch((0..<1000).map { sampleBody(title: "\(tenant) \(batch)-\($0)") }).value
            }
            _ = try await records.delete(created[17].id)
            let keyed = try await records.create(sampleBody(title: "keyed"), idempotencyKey: "once").value
            before[tenant] = (try await records.stats(), [created[0], created[999], created[2999]], keyed)
        }
        let onAStaying = try await a.client(tenant: staying)
        _ = try await onAStaying.performance.learningRecords.create(sampleBody(title: "stays"))
        // ga's primary publishes its partitions' records (what `cluster rebalance --by records` and the
        // balancer read): 3,001 of each moving tenant, the deleted one too, and the staying tenant's
        // one. (Their load is published only after a minute of measuring: PartitionLoadMeterTests.)
        #expect(await eventually(within: 30) {
            guard let published = try? await store.get(ClusterConfiguration.partitionFiguresKey(ofGroup: "ga")),
                let figures = try? PartitionFigures.decode(published.value)
            else { return false }
            return figures.records[partition] == 6002 && figures.records[Self.map.partition(of: staying)] == 1
                && figures.records.keys.allSatisfy { Self.map.holder(of: $0) == "ga" }
        })
        // A change-feed subscriber of a moving tenant, caught up on ga before the move.
        let subscriber = try await a.client(tenant: moving[0])
        var feed = subscriber.feed.subscribe(from: .after(0), retryFor: .seconds(60)).makeAsyncIterator()
        for expected in 1...5 { #expect(try await feed.next()?.sequence == UInt64(expected)) }

        // The move starts: ga refuses the partition's writes (LOADING), gb's primary copies it and
        // completes the move in etcd.
        let stored = try #require(try await store.get(key))
        let started = try PartitionMap.decode(stored.value).startingMove(of: partition, to: "gb")
        #expect(try await store.transaction(if: [.modRevision(key, stored.modRevision)], put: [(key, started.encoded, 0)]))
        #expect(await eventually(within: 60) {
            guard let current = try? await store.get(key), let map = try? PartitionMap.decode(current.value) else { return false }
            return map.moves.isEmpty && map.holder(of: partition) == "gb"
        })

        // The old group: a connection authenticated before the move cannot write (LOADING until ga
        // has released the tenant, MOVED to gb after), and a new one is sent to gb. The partition
        // that stayed is served as before.
        let refused = await #expect(throws: LearnStoreError.self) {
            _ = try await clientsOnA[moving[0]]!.performance.learningRecords.create(sampleBody(title: "too late"))
        }
        #expect(refused?.code == .loading || refused?.code == .moved)
        #expect(await eventually(within: 30) {
            do { _ = try await a.client(tenant: moving[0]); return false } catch let error as LearnStoreError {
                return error.code == .moved && error.primaryAddress == "127.0.0.1:\(b.port)"
            } catch { return false }
        })
        _ = try await onAStaying.performance.learningRecords.create(sampleBody(title: "still here"))

        // The new group holds the tenants whole, their sequences continue, and their keys still match.
        for tenant in moving {
            let (stats, sample, keyed) = try #require(before[tenant])
            let onB = try await b.client(tenant: tenant)
            let records = onB.performance.learningRecords
            let moved = try await records.stats()
            for field in ["records", "deleted_records", "idempotency_keys"] { #expect(moved[field] == stats[field], "\(field) of \(tenant)") }
            let sourceSequence = try #require(stats["sequence"]?.int64Value)
            #expect(try #require(moved["sequence"]?.int64Value) > sourceSequence)
            for record in sample { #expect(try await records.get(record.id) == record) }
            let replayed = try await records.create(sampleBody(title: "keyed"), idempotencyKey: "once")
            #expect(replayed.replayed && replayed.value == keyed)
            let next = try await records.create(sampleBody(title: "after the move"))
            #expect(next.sequence > UInt64(sourceSequence))
            await onB.shutdown()
        }

        // The subscriber's subscription ended on ga (the tenant was released there) and went on in gb
        // after its last sequence: the copy (a tenant_restore, then the records as imports), then
        // the write made after the move.
        var after: [FeedChange] = []
        for _ in 0..<3 { after.append(try #require(try await feed.next())) }
        #expect(after.map(\.sequence) == [6, 7, 8])
        #expect(after.map(FeedServerTests.kinds) == [["tenant_restore", "import"], ["import"], ["create"]])
        let copied = after.prefix(2).flatMap(\.parts).reduce(0) { count, part in
            if case .records(_, let records) = part { return count + records.count } else { return count }
        }
        #expect(copied == 3001)
        // gb's metrics show the move and its pieces.
        let scrape = try await Scrape.get(port: try #require(b.metricsPort))
        #expect(scrape["learnstore_partition_moves_completed_total"] == 1 && (scrape["learnstore_partition_move_pieces_copied_total"] ?? 0) >= 4)
        #expect((scrape["learnstore_partition_map_version"] ?? 0) >= 3)

        // And ga holds nothing of the moved tenants any more.
        let released = await eventually(within: 30) {
            for tenant in moving { if await a.application.context.registry.existingTenant(tenant)?.state.isEmpty != true { return false } }
            return true
        }
        var left: [String] = []
        for tenant in moving {
            if let state = await a.application.context.registry.existingTenant(tenant)?.state, !state.isEmpty {
                left.append("\(tenant): sequence \(state.sequence), \(state.store.liveCount) live and \(state.store.deletedCount) deleted records, \(state.idempotency.count) keys")
            }
        }
        #expect(released, "ga still holds \(left) (map version \(a.application.context.environment.topology.partitioning?.map.version ?? 0))")
        // A read on a connection opened before the move is sent to gb, not answered from the emptied tenant.
        let stale = await #expect(throws: LearnStoreError.self) {
            _ = try await clientsOnA[moving[0]]!.performance.learningRecords.get(before[moving[0]]!.sample[0].id)
        }
        #expect(stale?.code == .moved && stale?.primaryAddress == "127.0.0.1:\(b.port)", "\(String(describing: stale))")

        for client in Array(clientsOnA.values) + [onAStaying, subscriber] { await client.shutdown() }
        try await a.stop()
        try await b.stop()
    }
}

/// What the group a partition goes to accepts from the group it leaves: pieces of the named tenant
/// only, never a reset or release, and nothing that does not decode whole.
@Suite struct PartitionPieceCheckTests {
    static func piece(_ mutations: [TenantMutation], tenant: String = "acme", count: Int? = nil, trailing: [UInt8] = []) -> PartitionExportPiece {
        var writer = ByteWriter(capacity: 256)
        for mutation in mutations { MutationCodec.encode(mutation, into: &writer) }
        return PartitionExportPiece(end: false, tenant: tenant, sequence: 9, next: nil, mutationCount: count ?? mutations.count, mutations: writer.bytes + trailing)
    }

    static func record(of tenant: String) -> LearningRecord {
        LearningRecord(id: RecordID(high: 1, low: 1), tenantID: tenant, createdAt: Timestamp(milliseconds: 1), updatedAt: Timestamp(milliseconds: 1),
                       personID: UUID16(high: 2, low: 2))
    }

    @Test func aPieceOfTheTenantsOwnRecordsIsTaken() throws {
        let mutations: [TenantMutation] = [.putRecords([Self.record(of: "acme")]), .recordChange(.import)]
        #expect(try PartitionCopy.decodeMutations(Self.piece(mutations), from: "peer") == mutations)
    }

    @Test(arguments: [
        ("another tenant's record", Self.piece([.putRecords([Self.record(of: "other")])])),
        ("a reset", Self.piece([.resetTenant])),
        ("a release", Self.piece([.releaseTenant])),
        ("more mutations announced than sent", Self.piece([.recordChange(.import)], count: 2)),
        ("bytes after the mutations", Self.piece([.recordChange(.import)], trailing: [0])),
        ("an unknown mutation", Self.piece([], count: 1, trailing: [99])),
    ])
    func aPieceThatIsNotTheTenantsIsRefused(_ what: String, _ piece: PartitionExportPiece) {
        let error = #expect(throws: LearnStoreError.self, "\(what)") { try PartitionCopy.decodeMutations(piece, from: "peer") }
        #expect(error?.code == .protocolViolation)
    }
}
