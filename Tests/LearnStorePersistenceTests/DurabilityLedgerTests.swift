import LearnStorePersistence
import Testing

/// The ledger as transcripts: events in, answers out, no files and no threads.
@Suite struct DurabilityLedgerTests {
    static func lsn(_ result: Result<UInt64, DurabilityLedger.Refusal>) -> UInt64? {
        if case .success(let lsn) = result { return lsn }
        return nil
    }

    /// Appends and writes one record of `tenant` to the current segment.
    static func write(_ ledger: inout DurabilityLedger, _ tenant: String) -> UInt64 {
        let lsn = Self.lsn(ledger.append(tenant: tenant))!
        ledger.written(through: lsn)
        return lsn
    }

    @Test func commitAfterAFailureNeverMakesTheFailedWritesDurable() {
        var ledger = DurabilityLedger(nextLSN: 1)
        ledger.segmentOpened(firstLSN: 1)
        let a1 = Self.lsn(ledger.append(tenant: "a"))!
        ledger.committed(through: a1)
        let a2 = Self.lsn(ledger.append(tenant: "a"))!
        let b1 = Self.lsn(ledger.append(tenant: "b"))!
        let rollbacks = ledger.writeFailed(from: a2, reason: "ENOSPC")
        #expect(rollbacks == [.init(tenant: "a", lsns: a2...a2), .init(tenant: "b", lsns: b1...b1)])
        #expect(ledger.state(of: a1) == .durable)
        #expect(ledger.state(of: a2) == .failed)
        #expect(ledger.state(of: b1) == .failed)
        // Appends are refused while the storage fails, then per tenant until its rollback is confirmed.
        #expect(ledger.append(tenant: "c") == .failure(.storageFailing("ENOSPC")))
        ledger.storageRecovered()
        #expect(ledger.append(tenant: "a") == .failure(.rollingBack(tenant: "a")))
        let c1 = Self.lsn(ledger.append(tenant: "c"))!
        #expect(c1 == b1 + 1, "failed LSNs are never given again")
        ledger.committed(through: c1)
        #expect(ledger.state(of: c1) == .durable)
        #expect(ledger.state(of: a2) == .failed, "a later commit does not cover a failed LSN")
        ledger.rollbackDone(tenant: "a")
        #expect(Self.lsn(ledger.append(tenant: "a")) == c1 + 1)
        #expect(ledger.append(tenant: "b") == .failure(.rollingBack(tenant: "b")))
    }

    /// A failure is shown to readers of the commit mark (its error sent, reads held behind it
    /// released) only once every tenant holding failed writes has undone them.
    @Test func theVisibleMarkWaitsForEveryRollback() {
        var ledger = DurabilityLedger(nextLSN: 1)
        let a1 = Self.lsn(ledger.append(tenant: "a"))!
        ledger.committed(through: a1)
        #expect(ledger.visibleThrough == a1)
        let a2 = Self.lsn(ledger.append(tenant: "a"))!
        let b1 = Self.lsn(ledger.append(tenant: "b"))!
        _ = ledger.writeFailed(from: a2, reason: "EIO")
        #expect(ledger.resolvedThrough == b1)
        #expect(ledger.visibleThrough == a1, "held below the first write still in memory")
        ledger.rollbackDone(tenant: "b")
        #expect(ledger.visibleThrough == a1, "a still holds a2")
        ledger.storageRecovered()
        let c1 = Self.lsn(ledger.append(tenant: "c"))!
        ledger.committed(through: c1)
        #expect(ledger.visibleThrough == a1, "a later commit waits too: its readers might have seen a2")
        ledger.rollbackDone(tenant: "a")
        #expect(ledger.visibleThrough == c1)
    }

    @Test func aFailureAfterEarlierWritesFailsOnlyFromItsFirstLSN() {
        var ledger = DurabilityLedger(nextLSN: 10)
        let first = Self.lsn(ledger.append(tenant: "a"))!
        let second = Self.lsn(ledger.append(tenant: "a"))!
        // The first batch was written (its commit is on its way), the second failed.
        _ = ledger.writeFailed(from: second, reason: "EIO")
        ledger.committed(through: first)
        #expect(ledger.state(of: first) == .durable)
        #expect(ledger.state(of: second) == .failed)
        #expect(ledger.awaitingRollback["a"] == second...second)
    }

    @Test func pendingUntilResolved() {
        var ledger = DurabilityLedger(nextLSN: 1)
        let a = Self.lsn(ledger.append(tenant: "a"))!
        #expect(ledger.state(of: a) == .pending)
        ledger.committed(through: a)
        #expect(ledger.state(of: a) == .durable)
        ledger.committed(through: 100)
        #expect(ledger.resolvedThrough == a, "nothing beyond the last LSN given is resolved")
    }

    @Test func retentionFollowsTheTenantsInEachSegment() {
        var ledger = DurabilityLedger(nextLSN: 1)
        ledger.segmentOpened(firstLSN: 1)
        let acme1 = Self.write(&ledger, "acme")
        let newco1 = Self.write(&ledger, "newco")
        ledger.committed(through: newco1)
        ledger.segmentOpened(firstLSN: newco1 + 1)
        let newco2 = Self.write(&ledger, "newco")
        ledger.segmentOpened(firstLSN: newco2 + 1)
        let acme2 = Self.write(&ledger, "acme")
        ledger.committed(through: acme2)
        // acme's snapshot covers all of acme; newco has none: only segments without newco go.
        ledger.snapshotsKept(tenant: "acme", oldestKeptLSN: acme2)
        #expect(ledger.removableSegments() == [])
        ledger.snapshotsKept(tenant: "newco", oldestKeptLSN: newco1)
        #expect(ledger.removableSegments() == [1])
        ledger.snapshotsKept(tenant: "newco", oldestKeptLSN: newco2)
        #expect(ledger.removableSegments() == [1, newco1 + 1])
        // A connected replica that has made only acme1 durable keeps every segment holding a later record.
        ledger.replicaHoldLSN = acme1
        #expect(ledger.removableSegments() == [])
        ledger.replicaHoldLSN = newco1
        #expect(ledger.removableSegments() == [1])
        ledger.replicaHoldLSN = .max
        ledger.segmentsRemoved([1, newco1 + 1])
        #expect(ledger.segments.map(\.firstLSN) == [newco2 + 1])
        _ = acme1
    }

    @Test func aTenantThatOnlyReadsNeverHoldsASegment() {
        var ledger = DurabilityLedger(nextLSN: 1)
        ledger.segmentOpened(firstLSN: 1)
        let a = Self.write(&ledger, "a")
        ledger.committed(through: a)
        ledger.segmentOpened(firstLSN: a + 1)
        ledger.snapshotsKept(tenant: "a", oldestKeptLSN: a)
        // "reader" exists as an actor and has a snapshot coverage of 0, but no record anywhere.
        ledger.snapshotsKept(tenant: "reader", oldestKeptLSN: 0)
        #expect(ledger.removableSegments() == [1])
    }

    @Test func theSegmentBeingWrittenIsNeverRemovable() {
        var ledger = DurabilityLedger(nextLSN: 1, segments: [.init(firstLSN: 1)])
        #expect(ledger.removableSegments() == [])
        ledger.segmentOpened(firstLSN: 5)
        #expect(ledger.removableSegments() == [1])
    }

    @Test func recordsCountInTheSegmentTheyWereWrittenTo() {
        var ledger = DurabilityLedger(nextLSN: 1, segments: [.init(firstLSN: 1)])
        let a = Self.lsn(ledger.append(tenant: "a"))!
        let b = Self.lsn(ledger.append(tenant: "b"))!
        ledger.written(through: a)
        // The writer rotates for the batch that starts at b.
        ledger.segmentOpened(firstLSN: b)
        ledger.written(through: b)
        ledger.committed(through: b)
        let a2 = Self.lsn(ledger.append(tenant: "a"))!
        ledger.written(through: a2)
        #expect(ledger.segments[0].newestLSNByTenant == ["a": a])
        #expect(ledger.segments[1].newestLSNByTenant == ["b": b, "a": a2])
    }

    @Test func aSyncFailureRefusesAppendsWithoutRollingBack() {
        var ledger = DurabilityLedger(nextLSN: 1)
        let a = Self.lsn(ledger.append(tenant: "a"))!
        ledger.committed(through: a)
        ledger.syncFailed(reason: "EIO")
        #expect(ledger.append(tenant: "a") == .failure(.storageFailing("EIO")))
        #expect(ledger.awaitingRollback.isEmpty)
        #expect(ledger.state(of: a) == .durable)
        ledger.storageRecovered()
        #expect(Self.lsn(ledger.append(tenant: "a")) == a + 1)
    }

    @Test func theRemovedSegmentsFileRoundTripsAndRefusesDamage() throws {
        let newest: [String: UInt64] = ["acme": 12, "b.c-d_e": 9_223_372_036_854_775_807]
        let bytes = RemovedSegmentsFile.encode(newest)
        #expect(String(decoding: bytes, as: UTF8.self) == "learnstore-removed-segments 1\nacme 12\nb.c-d_e 9223372036854775807\n")
        #expect(try RemovedSegmentsFile.decode(bytes) == newest)
        #expect(try RemovedSegmentsFile.decode(Array("learnstore-removed-segments 1\n".utf8)) == [:])
        for damaged in ["", "learnstore-removed-segments 1\nacme 12", "learnstore-removed-segments 2\n", "learnstore-removed-segments 1\nacme\n",
                        "learnstore-removed-segments 1\nac me 1\n", "learnstore-removed-segments 1\nacme 9223372036854775808\n",
                        "learnstore-removed-segments 1\nacme -1\n", "learnstore-removed-segments 1\nbad/id 1\n"] {
            #expect(throws: RemovedSegmentsFile.Damaged.self, "\(damaged)") { try RemovedSegmentsFile.decode(Array(damaged.utf8)) }
        }
    }

    @Test func theNewestLSNsOfSegmentsAreWhatRemovingThemTakes() {
        var ledger = DurabilityLedger(nextLSN: 1)
        ledger.segmentOpened(firstLSN: 1)
        for tenant in ["a", "b", "a"] { _ = ledger.append(tenant: tenant) }
        ledger.written(through: 3)
        ledger.committed(through: 3)
        ledger.segmentOpened(firstLSN: 4)
        _ = ledger.append(tenant: "c")
        ledger.written(through: 4)
        #expect(ledger.newestLSNs(inSegments: [1]) == ["a": 3, "b": 2])
        #expect(ledger.newestLSNs(inSegments: [1, 4]) == ["a": 3, "b": 2, "c": 4])
        #expect(ledger.newestLSNs(inSegments: []) == [:])
    }
}
