import LearnStoreModel
@testable import LearnStoreServer
import Testing

/// The control plane's documents in etcd: what a node writes, and what it refuses to read.
@Suite struct ClusterPlacementTests {
    @Test func aPlacementRoundTripsAndRefusesWhatANodeCouldNotFollow() throws {
        let placement = ClusterPlacement(epoch: 7, primary: "n1", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402"])
        #expect(try ClusterPlacement.decode(placement.encoded) == placement)
        for bad in [
            #"{"epoch":1,"primary":"n9","members":{"n0":"127.0.0.1:7401"}}"#,
            #"{"epoch":-1,"primary":"n0","members":{"n0":"127.0.0.1:7401"}}"#,
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:99999"}}"#,
            #"{"epoch":1,"primary":"n0","members":{"../x":"127.0.0.1:7401"}}"#,
            #"{"epoch":1,"primary":"n0"}"#, "not json", "",
        ] {
            #expect(throws: LearnStoreError.self, "\(bad)") { _ = try ClusterPlacement.decode(Array(bad.utf8)) }
        }
    }

    @Test func aPlacementKeepsItsLeavingAndRemovedNodes() throws {
        let placement = ClusterPlacement(
            epoch: 3, primary: "n0", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402", "n2": "127.0.0.1:7403"], leaving: ["n2"],
            replacing: ["n1"], removed: ["n7"])
        #expect(try ClusterPlacement.decode(placement.encoded) == placement)
        #expect(placement.acknowledgingMembers == ["n0"])
        let older = try ClusterPlacement.decode(Array(#"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"}}"#.utf8))
        #expect(older.leaving.isEmpty && older.removed.isEmpty)
        for bad in [
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"},"leaving":["n1"]}"#,
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"},"removed":["n0"]}"#,
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"},"replacing":["n3"]}"#,
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"},"removed":"n1"}"#,
            #"{"epoch":1,"primary":"n0","members":{"n0":"127.0.0.1:7401"},"removed":["../x"]}"#,
        ] {
            #expect(throws: LearnStoreError.self, "\(bad)") { _ = try ClusterPlacement.decode(Array(bad.utf8)) }
        }
    }

    @Test func theControllerDoesNotAddARemovedNodeBack() {
        let placement = ClusterPlacement(epoch: 2, primary: "n0", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402"], removed: ["n2"])
        let registered: [String: ClusterNodeEntry] = [
            "n0": ClusterNodeEntry(replication: "127.0.0.1:7401", role: .primary, epoch: 2),
            "n1": ClusterNodeEntry(replication: "127.0.0.1:7402", role: .replica, epoch: 2),
            "n2": ClusterNodeEntry(replication: "127.0.0.1:7403", role: .primary, epoch: 3),
        ]
        #expect(ControllerRules.reconciled(placement, registered: registered) == placement, "not a member again, and not recorded as a newer primary")
    }

    @Test func aNodeEntryRoundTripsAndAMalformedOneIsIgnored() {
        let entry = ClusterNodeEntry(replication: "127.0.0.1:7403", role: .fenced, epoch: 3)
        #expect(ClusterNodeEntry.decode(entry.encoded) == entry)
        #expect(ClusterNodeEntry.decode(Array(#"{"replication":"x","role":"primary","epoch":1}"#.utf8)) == nil)
        #expect(ClusterNodeEntry.decode(Array(#"{"replication":"127.0.0.1:1","role":"king","epoch":1}"#.utf8)) == nil)
    }

    @Test func aHandoverRequestRoundTripsAndIsRefusedUnlessItCanBeCarriedOut() {
        let request = HandoverRecord(to: "n1", epoch: 4)
        #expect(HandoverRecord.decode(request.encoded) == request)
        var failed = request
        failed.error = "n1 did not catch up"
        #expect(HandoverRecord.decode(failed.encoded) == failed)
        for bad in [#"{"to":"../x","epoch":4}"#, #"{"to":"n1","epoch":-1}"#, #"{"to":"n1"}"#, "[]", ""] {
            #expect(HandoverRecord.decode(Array(bad.utf8)) == nil, "\(bad)")
        }
        let placement = ClusterPlacement(
            epoch: 4, primary: "n0", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402", "n2": "127.0.0.1:7403", "n3": "127.0.0.1:7404"],
            leaving: ["n3"])
        let registered: Set<String> = ["n0", "n1", "n3"]
        #expect(request.refusal(placement, registered: registered) == nil)
        #expect(HandoverRecord(to: "n1", epoch: 3).refusal(placement, registered: registered)?.contains("epoch 3") == true)
        #expect(HandoverRecord(to: "n0", epoch: 4).refusal(placement, registered: registered)?.contains("already the primary") == true)
        #expect(HandoverRecord(to: "n3", epoch: 4).refusal(placement, registered: registered)?.contains("not a member counted") == true, "leaving")
        #expect(HandoverRecord(to: "n9", epoch: 4).refusal(placement, registered: registered)?.contains("not a member counted") == true)
        #expect(HandoverRecord(to: "n2", epoch: 4).refusal(placement, registered: registered)?.contains("not registered") == true)
    }

    @Test func aPrefixRangeEndsAfterEveryKeyWithThePrefix() throws {
        #expect(EtcdClient.prefixEnd("/learnstore/a/") == "/learnstore/a0")
        let kvs = try EtcdClient.keyValues(.array([.object([
            ("key", .string("L2xlYXJuc3RvcmUvYS9ub2Rlcy9uMA==")), ("value", .string("eA==")), ("mod_revision", .string("12")), ("lease", .string("99")),
        ])]))
        #expect(kvs == [EtcdClient.KeyValue(key: "/learnstore/a/nodes/n0", value: [0x78], createRevision: 0, modRevision: 12, lease: 99)])
        #expect(throws: LearnStoreError.self) { _ = try EtcdClient(endpoints: ["http://nohost"], group: .singletonMultiThreadedEventLoopGroup) }
    }

    @Test func theControllerAddsMembersAndRecordsAPrimaryItDidNotPromote() {
        let placement = ClusterPlacement(epoch: 2, primary: "n0", members: ["n0": "127.0.0.1:7401", "n1": "127.0.0.1:7402"])
        let steady: [String: ClusterNodeEntry] = [
            "n0": ClusterNodeEntry(replication: "127.0.0.1:7401", role: .primary, epoch: 2),
            "n1": ClusterNodeEntry(replication: "127.0.0.1:7402", role: .replica, epoch: 2),
        ]
        #expect(ControllerRules.reconciled(placement, registered: steady) == placement, "nothing to record")
        var joined = steady
        joined["n2"] = ClusterNodeEntry(replication: "127.0.0.1:7403", role: .replica, epoch: 2)
        #expect(ControllerRules.reconciled(placement, registered: joined).members["n2"] == "127.0.0.1:7403")
        var promoted = steady
        promoted["n1"] = ClusterNodeEntry(replication: "127.0.0.1:7402", role: .primary, epoch: 3)
        promoted["n0"] = ClusterNodeEntry(replication: "127.0.0.1:7401", role: .fenced, epoch: 2)
        let next = ControllerRules.reconciled(placement, registered: promoted)
        #expect(next.primary == "n1" && next.epoch == 3)
        var stale = steady
        stale["n1"] = ClusterNodeEntry(replication: "127.0.0.1:7402", role: .primary, epoch: 1)
        #expect(ControllerRules.reconciled(placement, registered: stale).primary == "n0", "an old primary's claim changes nothing")
    }

    /// A primary stops acknowledging before etcd could let its lease go, and late enough to ride out an
    /// etcd election that begins just before a renewal (renewals come every third of the TTL).
    @Test func aPrimaryFencesItselfShortOfItsLeaseTTL() {
        #expect(ControllerRules.leaseFenceAfter(ttlSeconds: 3) == .milliseconds(2_500))
        #expect(ControllerRules.leaseFenceAfter(ttlSeconds: 2) == .milliseconds(1_500))
        #expect(ControllerRules.leaseFenceAfter(ttlSeconds: 60) == .seconds(50))
        for ttl in 1...60 {
            let limit = ControllerRules.leaseFenceAfter(ttlSeconds: ttl)
            #expect(limit <= .seconds(ttl) - .milliseconds(500))
            // At least two renewal periods: a renewal that fails leaves one more before the fence.
            if ttl >= 2 { #expect(limit >= .milliseconds(ttl * 2000 / 3)) }
        }
    }

    @Test func thePrimaryIsReplacedWhenItsKeyExpiresOrAfterFailedChecksInARow() {
        var watch = ControllerRules.PrimaryWatch(threshold: 3)
        let checks: [(Bool, Bool?)] = [(true, false), (true, false), (true, true), (true, false), (true, nil), (true, false)]
        let replaced = checks.map { watch.failed(keyPresent: $0.0, answeredPrimary: $0.1) }
        #expect(replaced == [false, false, false, false, false, true], "an answer clears the count; three failures in a row replace")
        watch.reset()
        let expired = watch.failed(keyPresent: false, answeredPrimary: nil)
        #expect(expired, "an expired key at once")
    }
}
