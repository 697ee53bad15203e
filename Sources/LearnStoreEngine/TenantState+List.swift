import LearnStoreModel

/// List queries: pick the most selective index as the driver, walk it in (created_at, id) order from
/// the cursor, and check the remaining filters on each record.
extension TenantState {
    /// The filter values resolved to the tenant's references; nil when a value was never stored
    /// (then nothing can match).
    struct CompiledFilter {
        var person: UInt32?
        var cohort: UInt32?
        var provider: UInt32?
        var app: UInt32?
        var assessment: UUID16?
        var certificationRef: String?
        var passed: Bool?
        var completed: (Int64?, Int64?)?
        var expires: (Int64?, Int64?)?
        var updatedSince: Int64?
        var includeDeleted: Bool

        @inline(__always)
        func matches(_ r: StoredRecord, _ store: RecordStore) -> Bool {
            if r.isPurged { return false }
            if !includeDeleted && r.isDeleted { return false }
            if let person, r.person != person { return false }
            if let cohort, r.cohort != cohort { return false }
            if let provider, r.provider != provider { return false }
            if let app, r.app != app { return false }
            if let passed, r.passed != passed { return false }
            if let assessment, r.assessment != assessment { return false }
            if let (from, to) = completed, !Self.inRange(r.completedAt, from, to) { return false }
            if let (from, to) = expires, !Self.inRange(r.expiresAt, from, to) { return false }
            if let updatedSince, r.updatedAt < updatedSince { return false }
            if let certificationRef, store.certificationRef(of: r) != certificationRef { return false }
            return true
        }

        @inline(__always)
        static func inRange(_ value: Int64, _ from: Int64?, _ to: Int64?) -> Bool {
            if value == StoredRecord.nullTime { return false }
            if let from, value < from { return false }
            if let to, value >= to { return false }
            return true
        }
    }

    /// How many records of a posting-list walk are prefetched before it starts: a first page of
    /// the usual sizes, without flooding the cache when a page is large.
    static var listPrefetchDepth: Int { 32 }

    enum Driver {
        case postings(PostingList)
        case sortedSlots([UInt32])
        case range(OrderedSlotIndex, Int64?, Int64?, RecordTimeKeys.Field)
        case scan
        case empty
    }

    public mutating func list(_ rawQuery: ListQuery, caller: CallerIdentity) throws(LearnStoreError) -> ListPage {
        try caller.require(.recordsRead)
        catchUpIndexes()
        let query = try rawQuery.validated()
        guard let filter = compile(query, caller: caller) else { return ListPage(slots: [], nextCursor: nil) }
        let driver = chooseDriver(query, filter)
        let ascending = query.order == .ascending
        let want = query.limit + 1
        var slots: [UInt32] = []
        slots.reserveCapacity(min(want, 1024))

        // Where to start, from the cursor: strictly after it in the walking direction.
        var start: UInt32 = ascending ? 0 : UInt32.max
        if let cursor = query.cursor {
            let after = store.firstSlot(after: cursor.createdAt, cursor.id.high, cursor.id.low)
            if ascending {
                start = after
            } else {
                // Last slot strictly before the cursor key.
                var before = after
                if before > 0, store[before - 1].id == cursor.id, store[before - 1].createdAt == cursor.createdAt { before -= 1 }
                if before == 0 { return ListPage(slots: [], nextCursor: nil) }
                start = before - 1
            }
        }
        let store = self.store
        func take(_ slot: UInt32) -> Bool {
            if filter.matches(store[slot], store) { slots.append(slot) }
            return slots.count < want
        }

        switch driver {
        case .empty:
            break
        case .postings(let list):
            // The records of one person (or cohort, provider…) are scattered over the tenant's
            // storage, each read a likely cache miss: start the loads of the first ones the walk will
            // read, so that their misses overlap instead of following each other.
            let depth = min(want, Self.listPrefetchDepth)
            var ahead = 0
            list.visit(from: start, ascending: ascending) { slot in
                store.records.prefetch(Int(slot))
                ahead += 1
                return ahead < depth
            }
            list.visit(from: start, ascending: ascending, take)
        case .sortedSlots(let candidates):
            if ascending {
                for slot in candidates where slot >= start { if !take(slot) { break } }
            } else {
                for slot in candidates.reversed() where slot <= start { if !take(slot) { break } }
            }
        case .scan:
            let count = UInt32(store.slotCount)
            if ascending {
                var slot = start
                while slot < count, take(slot) { slot += 1 }
            } else if count > 0 {
                var slot = Int64(min(start, count - 1))
                while slot >= 0, take(UInt32(slot)) { slot -= 1 }
            }
        case .range(let index, let lower, let upper, let field):
            var candidates: [UInt32] = []
            index.visit(lower: lower, upper: upper, keys: RecordTimeKeys(store.records, field)) { slot in
                if ascending ? slot >= start : slot <= start, filter.matches(store[slot], store) { candidates.append(slot) }
            }
            candidates.sort(by: ascending ? (<) : (>))
            slots = Array(candidates.prefix(want))
        }

        var next: ListCursor?
        if slots.count > query.limit {
            slots.removeLast()
            let last = store[slots[slots.count - 1]]
            next = ListCursor(createdAt: last.createdAt, id: last.id, fingerprint: query.fingerprint, order: query.order)
        }
        return ListPage(slots: slots, nextCursor: next)
    }

    public mutating func listRecords(_ query: ListQuery, caller: CallerIdentity) throws(LearnStoreError) -> (records: [LearningRecord], next: ListCursor?) {
        let page = try list(query, caller: caller)
        return (page.slots.map { store.record(at: $0) }, page.nextCursor)
    }

    func compile(_ query: ListQuery, caller: CallerIdentity) -> CompiledFilter? {
        var filter = CompiledFilter(includeDeleted: query.includeDeleted)
        if let person = query.personID {
            guard let ref = store.persons.find(person) else { return nil }
            filter.person = ref
        }
        if let cohort = query.linkedCohortID {
            guard let ref = store.uuids.find(cohort) else { return nil }
            filter.cohort = ref
        }
        if let provider = query.provider {
            guard let ref = store.strings.find(provider) else { return nil }
            filter.provider = ref
        }
        if let app = caller.appID {
            guard let ref = store.strings.find(app) else { return nil }
            filter.app = ref
        }
        filter.assessment = query.linkedAssessmentID
        filter.certificationRef = query.certificationRef
        filter.passed = query.passed
        if let range = query.completedAt { filter.completed = (range.from?.milliseconds, range.to?.milliseconds) }
        if let range = query.expiresAt { filter.expires = (range.from?.milliseconds, range.to?.milliseconds) }
        filter.updatedSince = query.updatedSince?.milliseconds
        return filter
    }

    /// The cheapest index for this query: posting lists and exact lookups cost their size; a range
    /// costs about twice its size (it must be sorted); a scan costs the whole tenant.
    func chooseDriver(_ query: ListQuery, _ filter: CompiledFilter) -> Driver {
        var best: (cost: Int, driver: Driver) = (store.slotCount, .scan)
        func consider(_ cost: Int, _ driver: @autoclosure () -> Driver) {
            if cost < best.cost { best = (cost, driver()) }
        }
        if let ref = filter.person {
            let list = indexes.personList(ref)
            consider(list.count, .postings(list))
        }
        if let cert = filter.certificationRef {
            let slots = indexes.slots(certificationRef: cert, in: store)
            consider(slots.count, .sortedSlots(slots))
        }
        if let assessment = filter.assessment {
            let slots = indexes.slots(assessment: assessment, in: store)
            consider(slots.count, .sortedSlots(slots))
        }
        if let ref = filter.cohort {
            let list = indexes.byCohort[ref]
            consider(list.count, .postings(list))
        }
        if let ref = filter.provider {
            let list = indexes.byProvider[ref]
            consider(list.count, .postings(list))
        }
        if let ref = filter.app {
            let list = indexes.byApp[ref]
            consider(list.count, .postings(list))
        }
        if let passed = filter.passed {
            let list = passed ? indexes.passedTrue : indexes.passedFalse
            consider(list.count, .postings(list))
        }
        if let (from, to) = filter.completed {
            let estimate = indexes.byCompletedAt.estimateCount(lower: from, upper: to)
            consider(estimate * 2, .range(indexes.byCompletedAt, from, to, .completedAt))
        }
        if let (from, to) = filter.expires {
            let estimate = indexes.byExpiresAt.estimateCount(lower: from, upper: to)
            consider(estimate * 2, .range(indexes.byExpiresAt, from, to, .expiresAt))
        }
        if let since = filter.updatedSince {
            let estimate = indexes.byUpdatedAt.estimateCount(lower: since, upper: nil)
            consider(estimate * 2, .range(indexes.byUpdatedAt, since, nil, .updatedAt))
        }
        return best.driver
    }
}
