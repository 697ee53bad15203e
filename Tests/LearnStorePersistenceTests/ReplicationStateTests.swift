import LearnStoreEngine
import LearnStoreModel
@testable import LearnStorePersistence
import Testing

/// The primary's in-sync set and commit mark, event by event, with the clock given.
@Suite struct ReplicaSetStateTests {
    static func state(_ mode: ReplicaSetState.Mode = .sync, minimum: Int = 1, lag: Int64 = 1_000) -> ReplicaSetState {
        ReplicaSetState(configuration: .init(mode: mode, lagLimitMilliseconds: lag, minimumInSync: minimum), localDurableLSN: 10)
    }

    @Test func aWriteIsAcknowledgedOnlyOnceTheInSyncReplicaHasItDurable() {
        var state = Self.state()
        state.connected("b", lastLSN: 10, nowMilliseconds: 0)
        #expect(state.inSyncReplicas == ["b"], "a replica holding everything acknowledged joins at once")
        state.locallyCommitted(through: 15, nowMilliseconds: 1)
        #expect(state.commitMark == 10)
        state.acknowledged("b", durableLSN: 13, appliedLSN: 13, nowMilliseconds: 2)
        #expect(state.commitMark == 13)
        state.acknowledged("b", durableLSN: 99, appliedLSN: 99, nowMilliseconds: 3)
        #expect(state.commitMark == 15, "an acknowledgement past what the primary committed counts up to the primary's commit")
    }

    @Test func belowTheMinimumInSyncNothingIsAcknowledged() {
        var state = Self.state(minimum: 1)
        state.locallyCommitted(through: 20, nowMilliseconds: 0)
        #expect(state.commitMark == 10)
        var alone = Self.state(minimum: 0)
        alone.locallyCommitted(through: 20, nowMilliseconds: 0)
        #expect(alone.commitMark == 20)
        var async = Self.state(.async, minimum: 1)
        async.locallyCommitted(through: 20, nowMilliseconds: 0)
        #expect(async.commitMark == 20)
    }

    @Test func aLaggingReplicaLeavesAtTheLimitAndOnlyThenIsAcknowledgedWithout() {
        var state = Self.state(minimum: 0, lag: 1_000)
        state.connected("b", lastLSN: 10, nowMilliseconds: 0)
        state.locallyCommitted(through: 11, nowMilliseconds: 100)
        #expect(state.tick(nowMilliseconds: 1_099).isEmpty)
        #expect(state.commitMark == 10, "still in sync: the write waits for it")
        #expect(state.tick(nowMilliseconds: 1_100) == ["b"])
        #expect(state.commitMark == 11)
        #expect(state.inSyncReplicas.isEmpty)
    }

    @Test func aDisconnectedReplicaLeavesAtOnce() {
        var state = Self.state(minimum: 0)
        state.connected("b", lastLSN: 10, nowMilliseconds: 0)
        state.locallyCommitted(through: 12, nowMilliseconds: 1)
        #expect(state.commitMark == 10)
        state.disconnected("b", nowMilliseconds: 2)
        #expect(state.inSyncReplicas.isEmpty)
        #expect(state.commitMark == 12)
    }

    @Test func aReplicaCatchingUpJoinsOnlyOnceItHoldsEveryAcknowledgedWrite() {
        var state = Self.state(minimum: 0, lag: 1_000)
        state.locallyCommitted(through: 20, nowMilliseconds: 0)
        #expect(state.commitMark == 20)
        state.connected("b", lastLSN: 5, nowMilliseconds: 5_000)
        #expect(state.inSyncReplicas.isEmpty, "it lacks writes acknowledged long ago")
        state.acknowledged("b", durableLSN: 19, appliedLSN: 19, nowMilliseconds: 5_010)
        #expect(state.inSyncReplicas.isEmpty)
        state.locallyCommitted(through: 25, nowMilliseconds: 5_020)
        #expect(state.commitMark == 25)
        // Its lag is now small: it is joining, and the writes from now on wait for it.
        state.acknowledged("b", durableLSN: 20, appliedLSN: 20, nowMilliseconds: 5_030)
        #expect(state.replicas["b"]?.joining == true)
        #expect(state.inSyncReplicas.isEmpty, "it still lacks acknowledged writes 21-25")
        state.locallyCommitted(through: 30, nowMilliseconds: 5_040)
        #expect(state.commitMark == 25)
        state.acknowledged("b", durableLSN: 25, appliedLSN: 25, nowMilliseconds: 5_050)
        #expect(state.inSyncReplicas == ["b"])
        #expect(state.commitMark == 25)
        state.acknowledged("b", durableLSN: 30, appliedLSN: 30, nowMilliseconds: 5_060)
        #expect(state.commitMark == 30)
    }

    @Test func retentionKeepsWhatAConnectedReplicaHeardFromRecentlyLacks() {
        var state = Self.state(minimum: 0)
        #expect(state.retentionHold(nowMilliseconds: 0) == .max, "no replica, no hold")
        state.connected("b", lastLSN: 4, nowMilliseconds: 0)
        state.connected("c", lastLSN: 7, nowMilliseconds: 0)
        #expect(state.retentionHold(nowMilliseconds: 1) == 4)
        state.acknowledged("b", durableLSN: 9, appliedLSN: 9, nowMilliseconds: 2)
        #expect(state.retentionHold(nowMilliseconds: 3) == 7)
        // c falls silent: past the limit it holds nothing (it copies the primary if it needs to).
        state.acknowledged("b", durableLSN: 9, appliedLSN: 9, nowMilliseconds: ReplicaSetState.retentionHoldMilliseconds + 1)
        #expect(state.retentionHold(nowMilliseconds: ReplicaSetState.retentionHoldMilliseconds + 1) == 9)
        state.disconnected("b", nowMilliseconds: ReplicaSetState.retentionHoldMilliseconds + 2)
        #expect(state.retentionHold(nowMilliseconds: ReplicaSetState.retentionHoldMilliseconds + 2) == .max)
    }

    /// With a control plane only members count: a replica etcd does not list (one joining the cluster
    /// before the controller adds it, or one removed) never moves the mark, and a member that is
    /// dropped leaves the in-sync set at once.
    @Test func onlyMembersCountForTheMark() {
        var state = ReplicaSetState(configuration: .init(minimumInSync: 1), localDurableLSN: 10, eligible: ["b"])
        state.connected("c", lastLSN: 10, nowMilliseconds: 0)
        state.locallyCommitted(through: 20, nowMilliseconds: 1)
        state.acknowledged("c", durableLSN: 20, appliedLSN: 20, nowMilliseconds: 2)
        #expect(state.inSyncReplicas.isEmpty && state.commitMark == 10, "c is not a member")
        state.connected("b", lastLSN: 10, nowMilliseconds: 3)
        state.acknowledged("b", durableLSN: 20, appliedLSN: 20, nowMilliseconds: 4)
        #expect(state.inSyncReplicas == ["b"] && state.commitMark == 20)
        #expect(state.setEligible(["b", "c"], nowMilliseconds: 5).isEmpty)
        #expect(state.inSyncReplicas == ["b", "c"], "c holds the mark: it joins once it is a member")
        #expect(state.setEligible(["c"], nowMilliseconds: 6) == ["b"])
        state.locallyCommitted(through: 30, nowMilliseconds: 7)
        state.acknowledged("b", durableLSN: 30, appliedLSN: 30, nowMilliseconds: 8)
        #expect(state.commitMark == 20, "b no longer counts")
        state.acknowledged("c", durableLSN: 30, appliedLSN: 30, nowMilliseconds: 9)
        #expect(state.commitMark == 30)
    }

    /// A new primary's log may end in records no primary acknowledged. They count only together, once
    /// every in-sync replica has acknowledged all of them on its stream from this primary (having
    /// recorded its epoch first): a replica holding part of them would rank in the epoch before at
    /// the next promotion, where a node of an epoch in between could be preferred and cut them.
    @Test func anInheritedTailIsCommittedWholeOnceTheReplicasAcknowledgeIt() {
        var state = ReplicaSetState(configuration: .init(minimumInSync: 1), localDurableLSN: 30, learnedCommitLSN: 20)
        #expect(state.commitMark == 20 && state.inheritedThroughLSN == 30)
        state.connected("b", lastLSN: 30, nowMilliseconds: 0)
        #expect(state.inSyncReplicas == ["b"])
        #expect(state.commitMark == 20, "b holds the tail, but has not acknowledged on this stream: it may not have recorded the epoch")
        state.connected("c", lastLSN: 20, nowMilliseconds: 0)
        state.acknowledged("b", durableLSN: 30, appliedLSN: 30, nowMilliseconds: 1)
        state.acknowledged("c", durableLSN: 25, appliedLSN: 25, nowMilliseconds: 1)
        #expect(state.commitMark == 20, "c, in sync, holds only part of the tail: none of it counts")
        state.locallyCommitted(through: 32, nowMilliseconds: 2)
        state.acknowledged("c", durableLSN: 31, appliedLSN: 31, nowMilliseconds: 3)
        #expect(state.commitMark == 30, "the whole tail at once, then the new epoch's writes as the replicas hold them")
        state.acknowledged("b", durableLSN: 32, appliedLSN: 32, nowMilliseconds: 4)
        state.acknowledged("c", durableLSN: 32, appliedLSN: 32, nowMilliseconds: 4)
        #expect(state.commitMark == 32)
    }

    @Test func withoutReplicasToWaitForTheTailCountsAtOnce() {
        let alone = ReplicaSetState(configuration: .init(minimumInSync: 0), localDurableLSN: 30, learnedCommitLSN: 0)
        #expect(alone.commitMark == 30, "no in-sync replica is required, none is connected")
        let async = ReplicaSetState(configuration: .init(mode: .async, minimumInSync: 1), localDurableLSN: 30, learnedCommitLSN: 0)
        #expect(async.commitMark == 30)
        let required = ReplicaSetState(configuration: .init(minimumInSync: 1), localDurableLSN: 30, learnedCommitLSN: 50)
        #expect(required.commitMark == 30, "a learned mark above the log is capped at the log")
    }

    @Test func theMarkNeverMovesBack() {
        var state = Self.state(minimum: 0)
        state.locallyCommitted(through: 30, nowMilliseconds: 0)
        #expect(state.commitMark == 30)
        state.connected("b", lastLSN: 30, nowMilliseconds: 1)
        state.acknowledged("b", durableLSN: 12, appliedLSN: 12, nowMilliseconds: 2)
        #expect(state.commitMark == 30)
    }
}

@Suite struct EpochHistoryTests {
    @Test func theLastLSNOfAnEpochIsTheLSNBeforeTheNextBegan() throws {
        var history = EpochHistory()
        try history.begin(epoch: 2, firstLSN: 101)
        try history.begin(epoch: 5, firstLSN: 250)
        #expect(history.lastLSN(ofEpoch: 1, lastLSN: 400) == 100)
        #expect(history.lastLSN(ofEpoch: 3, lastLSN: 400) == 249, "an epoch this node never saw ends where the next one it saw began")
        #expect(history.lastLSN(ofEpoch: 5, lastLSN: 400) == 400)
        #expect(history.epochs(after: 1).map(\.epoch) == [2, 5])
        history.truncate(after: 200)
        #expect(history.currentEpoch == 2)
    }

    /// A log is in the newest epoch whose start it reaches: holding every record before an epoch's
    /// first LSN, it holds what that epoch's primary started with.
    @Test func aLogIsInTheNewestEpochWhoseStartItReaches() throws {
        var history = EpochHistory()
        try history.begin(epoch: 7, firstLSN: 101)
        try history.begin(epoch: 9, firstLSN: 235)
        #expect(history.logEpoch(through: 233) == 7)
        #expect(history.logEpoch(through: 234) == 9, "every record before epoch 9's first")
        #expect(history.logEpoch(through: 300) == 9)
        #expect(history.logEpoch(through: 0) == 1)
        #expect(history.logEpoch(through: 100) == 7 && history.epoch(of: 100) == 1)
    }

    @Test func aFollowerContinuesAfterItsLastLSNOrIsCutWhereTheHistoriesPart() throws {
        var primary = EpochHistory()
        try primary.begin(epoch: 2, firstLSN: 101)
        let behind = EpochHistory()
        #expect(primary.followPoint(follower: behind, lastLSN: 80, localLastLSN: 300)! == (80, false))
        #expect(primary.followPoint(follower: behind, lastLSN: 120, localLastLSN: 300)! == (100, true),
                "an old primary's records after its epoch ended elsewhere are cut")
        var rival = EpochHistory()
        try rival.begin(epoch: 2, firstLSN: 90)
        #expect(primary.followPoint(follower: rival, lastLSN: 95, localLastLSN: 300)! == (89, true),
                "the same epoch number begun at another LSN is another history")
        var newer = EpochHistory()
        _ = newer.promise(3, to: UUID16(high: 1, low: 3))
        #expect(primary.followPoint(follower: newer, lastLSN: 10, localLastLSN: 300) == nil, "a follower that promised a newer epoch fences this primary")
        #expect(primary.epoch(of: 100) == 1 && primary.epoch(of: 101) == 2)
    }

    @Test func epochsOnlyGrowAndTheFileRoundTrips() throws {
        var history = EpochHistory()
        #expect(throws: EpochHistory.Invalid.self) { try history.begin(epoch: 1, firstLSN: 5) }
        try history.begin(epoch: 3, firstLSN: 7)
        #expect(throws: EpochHistory.Invalid.self) { try history.begin(epoch: 4, firstLSN: 6) }
        let promotion = UUID16(high: 0x0123, low: 0x4567)
        _ = history.promise(7, to: promotion)
        #expect(try EpochHistory.decode(history.encoded) == history)
        #expect(try EpochHistory.decode(history.encoded).promised == 7)
        #expect(try EpochHistory.decode(history.encoded).promisedTo == promotion, "the promise names its promotion after a restart")
        #expect(try EpochHistory.decode(Array("learnstore-epochs 1\n1 1\npromised 4\n".utf8)).promisedTo == nil)
        for damaged in [
            "", "learnstore-epochs 1\n1 1", "learnstore-epochs 1\n2 5\n1 9\n", "learnstore-epochs 1\nx 1\n", "learnstore-epochs 1\n0 1\n",
            "learnstore-epochs 1\n1 1\npromised 4 not-a-uuid\n", "learnstore-epochs 1\n1 1\npromised 99999999999999999999\n",
        ] {
            #expect(throws: EpochHistory.Invalid.self) { try EpochHistory.decode(Array(damaged.utf8)) }
        }
    }

    /// A node promises an epoch to one promotion: a retry by it is answered again, another that picked
    /// the same epoch is refused, a higher epoch is promised to whoever asks, a lower one to none.
    @Test func anEpochIsPromisedToOnePromotion() throws {
        var history = EpochHistory()
        let first = UUID16(high: 1, low: 1)
        let second = UUID16(high: 2, low: 2)
        #expect(history.promise(2, to: first) == .granted(raised: true))
        #expect(history.promise(2, to: first) == .granted(raised: false), "a retry")
        #expect(history.promise(2, to: second) == .refused, "the same epoch, another promotion")
        #expect(history.promise(1, to: second) == .refused)
        #expect(history.promise(3, to: second) == .granted(raised: true))
        #expect(history.promise(2, to: first) == .refused, "superseded")
        #expect(history.promised == 3 && history.promisedTo == second)
        // Adopting a primary's history keeps a higher promise with its promotion.
        let primary = try EpochHistory(starts: [(1, 1), (2, 5)])
        #expect(history.adopting(primary).promised == 3 && history.adopting(primary).promisedTo == second)
        // Beginning the promised epoch spends the promise.
        try history.begin(epoch: 3, firstLSN: 9)
        #expect(history.promisedTo == nil)
        #expect(history.promise(3, to: second) == .refused)
    }
}

@Suite struct ReplicatedLogTests {
    static func record(_ lsn: UInt64, sequence: UInt64) -> [UInt8] {
        WALRecord(lsn: lsn, entry: LogEntry(tenantID: "t1", sequence: sequence, timestamp: Timestamp(milliseconds: 1_700_000_000_000),
                                             mutations: [.purgeRecords([])])).encoded
    }

    @Test func shippedRecordsAreCheckedAsTheLogChecksItsOwn() throws {
        let bytes = Self.record(5, sequence: 1) + Self.record(9, sequence: 2)
        let parsed = try ShippedRecords.parse(bytes, after: 4)
        #expect(parsed.map(\.record.lsn) == [5, 9])
        #expect(Array(bytes[parsed[1].bytes]) == Self.record(9, sequence: 2))
        #expect(throws: ShippedRecords.Invalid.self, "not above what the replica holds") { try ShippedRecords.parse(bytes, after: 5) }
        var flipped = bytes
        flipped[20] ^= 0x10
        #expect(throws: ShippedRecords.Invalid.self) { try ShippedRecords.parse(flipped, after: 0) }
        #expect(throws: ShippedRecords.Invalid.self, "cut short") { try ShippedRecords.parse(Array(bytes.dropLast()), after: 0) }
        #expect(throws: ShippedRecords.Invalid.self, "a commit marker") {
            try ShippedRecords.parse(bytes + WALCommitMarker(lastLSN: 9, records: 2).encoded, after: 0)
        }
    }

    @Test func aLedgerGivesAReplicatedWriteItsPrimarysLSNAndTheGapIsResolvedWithIt() {
        var ledger = DurabilityLedger(nextLSN: 4)
        #expect(ledger.append(tenant: "t", sequence: 1, at: 4) == .success(4))
        #expect(ledger.append(tenant: "t", sequence: 2, at: 9) == .success(9))
        #expect(ledger.append(tenant: "t", sequence: 3, at: 9) == .failure(.outOfOrder(lsn: 9, next: 10)))
        ledger.committed(through: 9)
        #expect(ledger.state(of: 9) == .durable)
        #expect(ledger.resolvedThrough == 9)
    }
}
