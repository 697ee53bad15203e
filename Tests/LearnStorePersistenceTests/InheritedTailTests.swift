import LearnStoreModel
@testable import LearnStorePersistence
import Testing

/// Raft's figure 8, scripted on the replication simulation's nodes (the server's own in-sync set,
/// WAL, recovery and epoch histories): an old primary promoted again with records no primary
/// acknowledged must not show them as committed before a replica holds them all, or the next
/// promotion may prefer a node of the epoch in between and replace them.
@Suite struct InheritedTailTests {
    @Test func aTailShownByAPromotedOldPrimaryIsNeverReplaced() throws {
        var simulation = ReplicationSimulation(seed: 8)
        for node in simulation.nodes { try simulation.boot(node) }
        let first = simulation.nodes[0]
        // A history every node holds, acknowledged.
        for _ in 0..<6 { try simulation.write() }
        for _ in 0..<20 {
            try simulation.connect()
            try simulation.exchangeEverything(first)
        }
        #expect(simulation.pending.isEmpty, "the common history is acknowledged")

        // The first primary's tail: written, durable on it alone, never acknowledged.
        for replica in simulation.nodes.dropFirst() { replica.partitionedUntil = .max }
        for connection in simulation.orderedConnections { simulation.close(connection) }
        for _ in 0..<6 { try simulation.write() }
        simulation.primaryWriterStep()
        simulation.crash(first)

        // Epoch 2 on another node, which writes alone and stops too.
        for replica in simulation.nodes { replica.partitionedUntil = 0 }
        try simulation.promoteIfPrimaryDown()
        let second = try #require(simulation.primary)
        let third = try #require(simulation.nodes.first { $0 !== first && $0 !== second })
        third.partitionedUntil = .max
        for _ in 0..<6 { try simulation.write() }
        simulation.primaryWriterStep()
        simulation.crash(second)

        // The first comes back (a replica, as a dead old primary does) and ranks above the third (its
        // log is longer, both in epoch 1): promoted with its tail.
        third.partitionedUntil = 0
        try simulation.restart(first)
        try simulation.promoteIfPrimaryDown()
        #expect(simulation.primary === first)
        #expect(simulation.shownReplaced == nil)
        // It stops before the third holds the tail; the second (epoch 2) now ranks above the third.
        simulation.crash(first)
        try simulation.restart(second)
        try simulation.promoteIfPrimaryDown()
        #expect(simulation.primary === second)
        for _ in 0..<12 { try simulation.write() }
        for _ in 0..<20 {
            try simulation.connect()
            try simulation.exchangeEverything(second)
        }
        #expect(simulation.pending.isEmpty, "the second's writes are acknowledged once the third follows it")
        #expect(simulation.shownReplaced == nil, "\(simulation.shownReplaced ?? "")")
        #expect(simulation.result.promotions == 3)
    }
}
