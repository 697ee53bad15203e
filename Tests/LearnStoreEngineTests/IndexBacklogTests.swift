import Testing
import LearnStoreModel
import LearnStoreTestSupport
@testable import LearnStoreEngine

/// New records reach the secondary indexes late (the backlog); a read catches them up, by a bulk build
/// or record by record. Whatever the interleaving of writes and reads, a list must answer exactly as
/// indexes built from scratch over the same records would.
@Suite struct IndexBacklogTests {
    static let queries: [ListQuery] = [
        ListQuery(personID: person(1)), ListQuery(personID: person(4)),
        ListQuery(certificationRef: "CERT-2"), ListQuery(linkedCohortID: person(101)),
        ListQuery(linkedAssessmentID: person(202)), ListQuery(provider: "edX"), ListQuery(passed: true),
        ListQuery(passed: false), ListQuery(completedAt: TimeRange(from: Timestamp(milliseconds: 1_700_000_400_000))),
        ListQuery(expiresAt: TimeRange(to: Timestamp(milliseconds: 1_700_000_900_000))),
        ListQuery(updatedSince: Timestamp(milliseconds: 1_704_067_200_400)), ListQuery(),
    ]

    static func randomBody(_ rng: inout SeededGenerator) -> RecordBody {
        let completed = Timestamp(milliseconds: 1_700_000_000_000 + Int64(rng.next() % 1_000_000))
        return body(
            person: person(rng.next() % 8), provider: ["AWS", "Coursera", "edX"][Int(rng.next() % 3)],
            score: Double(rng.next() % 101), passed: [true, false, nil][Int(rng.next() % 3)],
            cert: rng.next() % 4 == 0 ? nil : "CERT-\(rng.next() % 5)", cohort: person(100 + rng.next() % 3),
            assessment: person(200 + rng.next() % 4), completed: completed,
            expires: rng.next() % 2 == 0 ? Timestamp(milliseconds: completed.milliseconds + Int64(rng.next() % 500_000)) : nil)
    }

    /// Every query, all pages, ids only.
    static func answers(_ state: inout TenantState, _ who: CallerIdentity) throws -> [[RecordID]] {
        try queries.map { query in
            var q = query
            q.includeDeleted = true
            q.limit = 97
            var ids: [RecordID] = []
            while true {
                let page = try state.listRecords(q, caller: who)
                ids += page.records.map(\.id)
                guard let next = page.next else { return ids }
                q.cursor = next
            }
        }
    }

    @Test(arguments: 0..<6)
    func listsAfterAnyInterleavingMatchAFreshBuild(seed: Int) async throws {
        try await offTheCooperativePool { try Self.interleave(seed: seed) }
    }

    static func interleave(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &* 104_729 &+ 3)
        var h = Harness()
        var ids: [RecordID] = []
        var bulkBuilds = 0
        var stepwise = 0
        // An off-lock build taken at one step and installed a few steps later (the scheduler's
        // thread finishing while writes go on).
        var offLock: (built: TenantState.BuiltIndexes, installAt: Int)?
        var installs = (taken: 0, dropped: 0)
        // Its own generator, so the writes and reads are the same as without it.
        var offLockRandom = SeededGenerator(seed: UInt64(seed) &+ 77)
        for step in 0..<400 {
            if let pending = offLock, pending.installAt == step {
                if h.state.install(pending.built) { installs.taken += 1 } else { installs.dropped += 1 }
                offLock = nil
            }
            if offLock == nil, offLockRandom.next() % 4 == 0, let build = h.state.indexBuild(minimumBacklog: 1) {
                offLock = (build.run(), step + 1 + Int(offLockRandom.next() % 3))
            }
            switch rng.next() % 10 {
            case 0...3:
                let bodies = (0..<(1 + Int(rng.next() % 40))).map { _ in Self.randomBody(&rng) }
                ids += try h.state.createBatch(bodies, caller: h.who, now: h.tick()).result.map(\.id)
            case 4...5 where !ids.isEmpty:
                let id = ids[Int(rng.next() % UInt64(ids.count))]
                let other = Self.randomBody(&rng)
                var patch = RecordBody()
                patch.completedAt = rng.next() % 5 == 0 ? .null : other.completedAt
                patch.expiresAt = rng.next() % 3 == 0 ? .null : other.expiresAt
                patch.provider = other.provider
                patch.passed = rng.next() % 3 == 0 ? .null : other.passed
                patch.certificationRef = rng.next() % 3 == 0 ? .null : other.certificationRef
                patch.linkedAssessmentID = other.linkedAssessmentID
                if rng.next() % 2 == 0 { patch.personID = other.personID }
                _ = try? h.state.patch(id, patch, caller: h.who, now: h.tick())
            case 6 where !ids.isEmpty:
                _ = try? h.state.delete(ids[Int(rng.next() % UInt64(ids.count))], caller: h.who, now: h.tick())
            case 7 where !ids.isEmpty:
                _ = try? h.state.restore(ids[Int(rng.next() % UInt64(ids.count))], caller: h.who, now: h.tick())
            case 8 where rng.next() % 4 == 0:
                _ = try h.state.purgePerson(person(rng.next() % 8), dryRun: false, caller: h.who)
            default:
                // Read: compare the lazily maintained indexes with a fresh build of the same records.
                let backlog = h.state.indexBacklog
                if backlog > 0 {
                    if backlog * 4 >= h.state.store.slotCount { bulkBuilds += 1 } else { stepwise += 1 }
                }
                var fresh = h.state
                fresh.rebuildIndexes()
                let lazyAnswers = try Self.answers(&h.state, h.who)
                #expect(h.state.indexBacklog == 0)
                #expect(try lazyAnswers == Self.answers(&fresh, h.who))
                #expect(h.state.indexes.sizes.entries == fresh.indexes.sizes.entries)
            }
        }
        var fresh = h.state
        fresh.rebuildIndexes()
        #expect(try Self.answers(&h.state, h.who) == Self.answers(&fresh, h.who))
        #expect(bulkBuilds > 0 && stepwise > 0, "both ways of catching up were exercised")
        #expect(installs.taken > 0 && installs.dropped > 0, "off-lock builds were both installed and dropped as stale: \(installs)")
    }

    /// A backlog too small for a bulk build and large enough to merge (a large tenant between the
    /// scheduler's catch-ups), with records patched, deleted and purged in place between merges: the
    /// answers match a fresh build, in place and off the lock alike.
    @Test(arguments: 0..<3)
    func aMergedBacklogAnswersAsAFreshBuild(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed) &+ 900)
        var h = Harness()
        var ids: [RecordID] = []
        for _ in 0..<4 {
            ids += try h.state.createBatch((0..<1000).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick()).result.map(\.id)
        }
        h.state.catchUpIndexes()
        for round in 0..<6 {
            let added = RecordIndexes.mergeMinimumBacklog + Int(rng.next() % 500)
            #expect(added * 4 < h.state.store.slotCount, "a merge, not a bulk build")
            for _ in 0..<(added / 100) {
                ids += try h.state.createBatch((0..<100).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick()).result.map(\.id)
            }
            // In place: records below the backlog change, so remove-then-insert must have happened
            // before the merge reads their keys.
            for _ in 0..<20 {
                var patch = RecordBody()
                patch.completedAt = Self.randomBody(&rng).completedAt
                patch.expiresAt = rng.next() % 2 == 0 ? .null : Self.randomBody(&rng).expiresAt
                _ = try? h.state.patch(ids[Int(rng.next() % 4000)], patch, caller: h.who, now: h.tick())
            }
            _ = try? h.state.delete(ids[Int(rng.next() % UInt64(ids.count))], caller: h.who, now: h.tick())
            if round == 3 { _ = try h.state.purgePerson(person(rng.next() % 8), dryRun: false, caller: h.who) }
            if round % 2 == 0 {
                let build = try #require(h.state.indexBuild(minimumBacklog: 1))
                let installed = h.state.install(build.run())
                #expect(installed)
            }
            var fresh = h.state
            fresh.rebuildIndexes()
            #expect(try Self.answers(&h.state, h.who) == Self.answers(&fresh, h.who))
            #expect(h.state.indexes.sizes.entries == fresh.indexes.sizes.entries)
        }
    }

    /// While writes go on, only a tenant past the lazy size is caught up off the lock, once its
    /// backlog is worth a thread.
    @Test func theSchedulerCatchesUpDuringWritesOnlyLargeTenants() throws {
        var rng = SeededGenerator(seed: 17)
        var h = Harness()
        for _ in 0..<3 {
            _ = try h.state.createBatch((0..<1000).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        }
        #expect(h.state.indexBuildDuringWrites() == nil, "3,000 records: the tenant waits for a pause or a read")
        #expect(h.state.indexBuildDuringWrites(minimumBacklog: 1, minimumSlots: 2999) != nil)
        #expect(h.state.indexBuildDuringWrites(minimumBacklog: 3001, minimumSlots: 2999) == nil)
        h.state.catchUpIndexes()
        _ = try h.state.createBatch((0..<300).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBuildDuringWrites(minimumBacklog: 1, minimumSlots: 2999) == nil, "300 of 3,300: less than an eighth")
        _ = try h.state.createBatch((0..<200).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBuildDuringWrites(minimumBacklog: 1, minimumSlots: 2999) != nil, "500 of 3,500")
    }

    /// Writes index the backlog themselves only past what a read may wait for: never in a tenant of
    /// up to the lazy size, at once in a large tenant with a large backlog.
    @Test func writesIndexTheBacklogOnlyPastTheLongestReadWait() {
        #expect(!TenantState.writesIndexBacklog(backlog: 131_072, slots: 131_072))
        #expect(!TenantState.writesIndexBacklog(backlog: 400_000, slots: 400_000), "a bulk build of 400,000 records: 152 ms")
        #expect(TenantState.writesIndexBacklog(backlog: 600_000, slots: 600_000))
        #expect(!TenantState.writesIndexBacklog(backlog: 131_072, slots: 1_000_000), "131,072 slots added to a larger tenant: 190 ms")
        #expect(TenantState.writesIndexBacklog(backlog: 131_073, slots: 1_000_000))
    }

    /// A build taken off the lock is installed only if no record changed since its copy; a stale one
    /// is dropped and the next read catches up itself.
    @Test func anOffLockBuildIsInstalledOnlyOverTheRecordsItWasBuiltFrom() throws {
        var rng = SeededGenerator(seed: 11)
        var h = Harness()
        _ = try h.state.createBatch((0..<300).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBacklog == 300)
        let build = try #require(h.state.indexBuild(minimumSlots: 1))
        let built = build.run()
        #expect(h.state.indexBacklog == 300, "building off the lock leaves the live state alone")
        let installed = h.state.install(built)
        #expect(installed)
        #expect(h.state.indexBacklog == 0)
        var fresh = h.state
        fresh.rebuildIndexes()
        #expect(try Self.answers(&h.state, h.who) == Self.answers(&fresh, h.who))

        _ = try h.state.createBatch((0..<200).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let stale = try #require(h.state.indexBuild(minimumSlots: 1)).run()
        let ids = try h.ids(ListQuery(limit: 1000))
        _ = try h.state.delete(ids[0], caller: h.who, now: h.tick())
        let staleInstalled = h.state.install(stale)
        #expect(!staleInstalled, "a record changed after the copy")
        fresh = h.state
        fresh.rebuildIndexes()
        #expect(try Self.answers(&h.state, h.who) == Self.answers(&fresh, h.who))

        // A state that replaced the tenant (a restore) never takes indexes built from the one before.
        _ = try h.state.createBatch((0..<50).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let replaced = try #require(h.state.indexBuild(minimumBacklog: 1)).run()
        var other = Harness()
        _ = try other.state.createBatch((0..<10).map { _ in Self.randomBody(&rng) }, caller: other.who, now: other.tick())
        let replacedInstalled = other.state.install(replaced)
        #expect(!replacedInstalled)
    }

    /// A small tenant catches up in place, whatever its backlog: a thread would cost more than the build.
    @Test func aSmallTenantIsCaughtUpInPlaceAndALargeOneOffTheLock() throws {
        var rng = SeededGenerator(seed: 13)
        var small = Harness()
        _ = try small.state.createBatch((0..<100).map { _ in Self.randomBody(&rng) }, caller: small.who, now: small.tick())
        #expect(small.state.indexBacklog == 100)
        #expect(small.state.indexBuild() == nil)
        var large = Harness()
        for _ in 0..<2 {
            _ = try large.state.createBatch((0..<TenantState.offLockBulkSlots / 2).map { _ in Self.randomBody(&rng) }, caller: large.who, now: large.tick())
        }
        #expect(large.state.indexBuild() != nil)
    }

    /// Records appended after the copy leave a build valid: it covers the slots it copied, and the
    /// new ones stay in the backlog. A build older than the live indexes is not taken.
    @Test func anOffLockBuildOutlivesAppendsButNotAnOlderCatchUp() throws {
        var rng = SeededGenerator(seed: 12)
        var h = Harness()
        _ = try h.state.createBatch((0..<300).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let built = try #require(h.state.indexBuild(minimumSlots: 1)).run()
        _ = try h.state.createBatch((0..<40).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let installed = h.state.install(built)
        #expect(installed)
        #expect(h.state.indexBacklog == 40, "the records appended after the copy stay in the backlog")
        var fresh = h.state
        fresh.rebuildIndexes()
        #expect(try Self.answers(&h.state, h.who) == Self.answers(&fresh, h.who))

        _ = try h.state.createBatch((0..<200).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let overtaken = try #require(h.state.indexBuild(minimumSlots: 1)).run()
        h.state.catchUpIndexes()
        let overtakenInstalled = h.state.install(overtaken)
        #expect(!overtakenInstalled, "the live indexes already cover what the build does")
        #expect(h.state.indexBacklog == 0)
    }

    /// A read waits for a build off the lock only when catching up in place would hold the lock for
    /// about a millisecond or more.
    @Test func aReadBuildsOffTheLockOnlyWhenTheCatchUpIsLong() throws {
        var rng = SeededGenerator(seed: 13)
        var h = Harness()
        _ = try h.state.createBatch((0..<500).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBuildForRead() == nil, "a bulk build of 500 slots is about 0.2 ms")
        for _ in 0..<8 {
            _ = try h.state.createBatch((0..<500).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        }
        #expect(h.state.indexBuildForRead() != nil, "a bulk build of 4,500 slots is about 1.7 ms")
        h.state.catchUpIndexes()
        _ = try h.state.createBatch((0..<600).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBuildForRead() == nil, "600 slots one by one is about 0.9 ms")
        _ = try h.state.createBatch((0..<200).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBuildForRead() != nil, "800 slots one by one is about 1.2 ms")
    }

    /// A write that cannot be made durable is undone; records undone while still in the backlog
    /// must vanish from every answer too.
    @Test func undoOfRecordsStillInTheBacklog() throws {
        var rng = SeededGenerator(seed: 5)
        var h = Harness()
        _ = try h.state.createBatch((0..<200).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        let before = try Self.answers(&h.state, h.who)
        let write = try h.state.createBatch((0..<30).map { _ in Self.randomBody(&rng) }, caller: h.who, now: h.tick())
        #expect(h.state.indexBacklog == 30)
        h.state.undo(write.undo!)
        #expect(try Self.answers(&h.state, h.who) == before)
    }

    /// Recovery defers all index work until its end; a tenant that recovered with no records must
    /// still index the records written after it.
    @Test func aTenantRecoveredEmptyIndexesLaterWrites() throws {
        var h = Harness()
        h.state.beginBulkLoad()
        h.state.endBulkLoad()
        let created = try h.create(body(person: person(3)))
        #expect(try h.ids(ListQuery(personID: person(3))) == [created.id])
        #expect(h.state.indexBacklog == 0)
    }
}

/// The scheduler's catch-up during writes enters only tenants a write has seen past the lazy size.
@Suite struct OutgrownTenantTests {
    @Test func aTenantIsMarkedOnceAWriteTakesItPastTheLazySize() async throws {
        var rng = SeededGenerator(seed: 23)
        let tenant = TenantActor(state: TenantState(tenantID: tenantA), log: RecordingLog())
        let who = caller()
        let batches = TenantState.lazyIndexSlots / 1000
        for _ in 0..<batches {
            _ = try await tenant.createBatch((0..<1000).map { _ in IndexBacklogTests.randomBody(&rng) }, caller: who)
        }
        #expect(!tenant.outgrewLazyIndexing, "\(batches * 1000) records")
        _ = try await tenant.createBatch((0..<(TenantState.lazyIndexSlots - batches * 1000 + 1)).map { _ in IndexBacklogTests.randomBody(&rng) }, caller: who)
        #expect(tenant.outgrewLazyIndexing, "one past the lazy size")
    }
}

/// The queue the reads and the persistence scheduler share: a build is installed before its callers
/// go on, and callers for a tenant whose build runs wait for that one.
@Suite struct IndexBuildQueueTests {
    @Test func aBuildIsInstalledBeforeItsCallersGoOnAndLaterCallersJoinIt() async throws {
        var rng = SeededGenerator(seed: 31)
        let tenant = TenantActor(state: TenantState(tenantID: tenantA), log: RecordingLog())
        for _ in 0..<5 {
            _ = try await tenant.createBatch((0..<1000).map { _ in IndexBacklogTests.randomBody(&rng) }, caller: caller())
        }
        let queue = IndexBuildQueue()
        let build = try #require(await tenant.indexBuild())
        let finished = await withTaskGroup(of: Void.self) { group in
            for _ in 0..<3 {
                group.addTask { await queue.build(build, for: tenant) }
            }
            var finished = 0
            for await _ in group { finished += 1 }
            return finished
        }
        #expect(finished == 3)
        #expect(queue.running == 0)
        #expect(await tenant.state.indexBacklog == 0, "installed before the callers went on")
    }
}
