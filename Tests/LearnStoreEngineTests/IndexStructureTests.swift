import Testing
import LearnStoreModel
import LearnStoreTestSupport
@testable import LearnStoreEngine

@Suite struct PostingListTests {
    @Test func matchesASortedSetUnderRandomOperations() {
        var rng = SeededGenerator(seed: 5)
        var list = PostingList()
        var reference = Set<UInt32>()
        for _ in 0..<20_000 {
            let slot = UInt32(rng.next() % 6000)
            if rng.next() % 3 == 0 {
                #expect(list.remove(slot) == reference.contains(slot))
                reference.remove(slot)
            } else if !reference.contains(slot) {
                list.insert(slot)
                reference.insert(slot)
            }
        }
        #expect(list.count == reference.count)
        #expect(list.slots == reference.sorted())
        let from: UInt32 = 2500
        var ascending: [UInt32] = []
        list.visit(from: from, ascending: true) { ascending.append($0); return true }
        #expect(ascending == reference.sorted().filter { $0 >= from })
        var descending: [UInt32] = []
        list.visit(from: from, ascending: false) { descending.append($0); return descending.count < 10 }
        #expect(descending == Array(reference.sorted(by: >).filter { $0 <= from }.prefix(10)))
    }
}

extension PostingListTests {
    /// Lists pass through none, one (inline) and several slots, in both directions, and keep answering
    /// like a sorted set at every step.
    @Test func passesThroughTheInlineSingleSlot() {
        var rng = SeededGenerator(seed: 11)
        var list = PostingList()
        var reference = Set<UInt32>()
        for _ in 0..<5_000 {
            let slot = UInt32(rng.next() % 4)
            if rng.next() % 2 == 0 {
                let removed = list.remove(slot)
                #expect(removed == (reference.remove(slot) != nil))
            } else if reference.insert(slot).inserted {
                list.insert(slot)
            }
            #expect(list.count == reference.count)
            #expect(list.slots == reference.sorted())
            var below: [UInt32] = []
            list.visit(from: 1, ascending: false) { below.append($0); return true }
            #expect(below == reference.sorted(by: >).filter { $0 <= 1 })
        }
    }

    /// One word per list: the tables of lists (by person, cohort, app, provider) cost 8 bytes a key.
    @Test func isOneWord() {
        #expect(MemoryLayout<PostingList>.size == 8)
    }

    /// A write's undo is held until the log makes the write durable, or until the tenant's next
    /// write: one step per record must not cost a record's width.
    @Test func undoStepsAreNarrow() {
        #expect(MemoryLayout<TenantUndo.Step>.stride <= 24)
    }

    @Test func chunkedListsKeepTheirCount() {
        var list = PostingList()
        for slot in UInt32(0)..<10_000 { list.insert(slot * 2) }
        for slot in UInt32(0)..<5_000 { list.insert(slot * 4 + 1) }
        #expect(list.count == 15_000)
        let copy = list
        var removed = 0
        for slot in UInt32(0)..<10_000 where slot % 3 == 0 && list.remove(slot * 2) { removed += 1 }
        #expect(removed == 3_334)
        let absent = list.remove(3)
        #expect(!absent)
        #expect(list.count == 15_000 - 3_334)
        #expect(list.slots.count == list.count)
        #expect(list.slots == list.slots.sorted())
        // Copies share chunks until one of them changes.
        #expect(copy.count == 15_000 && copy.slots.count == 15_000 && copy.slots.first == 0)
        var grown = copy
        grown.insert(100_001)
        #expect(copy.count == 15_000 && grown.count == 15_001 && list.count == 15_000 - 3_334)
    }
}

@Suite struct SlotHashIndexTests {
    @Test func multimapInsertFindRemove() {
        var rng = SeededGenerator(seed: 9)
        var keys: [UInt32: Int] = [:]  // slot -> key
        var index = SlotHashIndex()
        func hash(_ key: Int) -> Int { key &* 31 }  // deliberately clustered
        for slot in UInt32(0)..<3000 {
            let key = Int(rng.next() % 500)
            keys[slot] = key
            index.insert(slot, hash: hash(key)) { hash(keys[$0]!) }
        }
        for slot in UInt32(0)..<3000 where slot % 3 == 0 {
            #expect(index.remove(slot, hash: hash(keys[slot]!)) { hash(keys[$0]!) })
            keys[slot] = nil
        }
        #expect(index.count == keys.count)
        for key in 0..<500 {
            var found: [UInt32] = []
            index.forEach(hash: hash(key), matches: { keys[$0] == key }) { found.append($0) }
            #expect(found.sorted() == keys.filter { $0.value == key }.map(\.key).sorted())
        }
    }

    /// The prefetch pass reads the first tag match; for distinct, well-mixed keys that is the record
    /// the lookup itself finds, and an absent key whose run holds no tag match has no candidate.
    @Test func firstCandidateIsTheSlotALookupFinds() {
        var index = SlotHashIndex()
        func hash(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &+ 1) &* 0x9E37_79B9_7F4A_7C15) }
        #expect(index.firstCandidate(hash: hash(1)) == nil)
        for slot in UInt32(0)..<2000 { index.insert(slot, hash: hash(UInt64(slot))) { hash(UInt64($0)) } }
        var agreeing = 0
        for slot in UInt32(0)..<2000 {
            let found = index.first(hash: hash(UInt64(slot))) { $0 == slot }
            #expect(found == slot)
            if index.firstCandidate(hash: hash(UInt64(slot))) == slot { agreeing += 1 }
            index.prefetchBucket(hash: hash(UInt64(slot)))  // a hint only: must not fault or change anything
        }
        // A 5-bit tag lets about one probe in 32 match by accident, ahead of the real entry.
        #expect(agreeing > 1900, "\(agreeing) of 2000")
        #expect(index.count == 2000)
    }
}

/// Keys of an ordered index read from an array indexed by slot.
private struct ArrayKeys: SlotKeys {
    let values: [Int64]
    init(_ values: [Int64]) { self.values = values }
    func key(_ slot: UInt32) -> Int64 { values[Int(slot)] }
}

@Suite struct OrderedSlotIndexTests {
    @Test func rangesMatchBruteForce() {
        var rng = SeededGenerator(seed: 13)
        var values: [Int64] = (0..<5000).map { _ in Int64(rng.next() % 1000) }
        var index = OrderedSlotIndex()
        for slot in 0..<values.count { index.insert(UInt32(slot), keys: ArrayKeys(values)) }
        // Move a third of them: remove, change, re-insert.
        for slot in stride(from: 0, to: values.count, by: 3) {
            let removed = index.remove(UInt32(slot), keys: ArrayKeys(values))
            #expect(removed)
            values[slot] = Int64(rng.next() % 1000)
            index.insert(UInt32(slot), keys: ArrayKeys(values))
        }
        for (lower, upper) in [(Int64?.none, Int64?.none), (100, 200), (nil, 50), (990, nil), (500, 500)] {
            var got: [UInt32] = []
            index.visit(lower: lower, upper: upper, keys: ArrayKeys(values)) { got.append($0) }
            let expected = (0..<values.count).filter { i in
                (lower.map { values[i] >= $0 } ?? true) && (upper.map { values[i] < $0 } ?? true)
            }.map { UInt32($0) }.sorted { (values[Int($0)], $0) < (values[Int($1)], $1) }
            #expect(got == expected)
        }
        #expect(index.isConsistent(keys: ArrayKeys(values)))
    }

    /// Many chunks, ties on the key across chunk boundaries, removal of chunk heads and of whole
    /// chunks, then a bulk-built index: the fences must keep matching the chunks throughout.
    @Test func fencesFollowSplitsRemovalsAndTies() {
        var rng = SeededGenerator(seed: 29)
        let values: [Int64] = (0..<20_000).map { _ in Int64(rng.next() % 50) }
        var index = OrderedSlotIndex()
        for slot in 0..<values.count { index.insert(UInt32(slot), keys: ArrayKeys(values)) }
        #expect(index.isConsistent(keys: ArrayKeys(values)))
        var present = Set(0..<values.count)
        for slot in (0..<values.count).shuffled(using: &rng).prefix(15_000) {
            let removed = index.remove(UInt32(slot), keys: ArrayKeys(values))
            #expect(removed)
            present.remove(slot)
        }
        let removedMissing = index.remove(UInt32(values.count + 1), keys: ArrayKeys(values + [7, 7]))
        #expect(!removedMissing)
        #expect(index.isConsistent(keys: ArrayKeys(values)) && index.count == present.count)
        var got: [UInt32] = []
        index.visit(lower: 10, upper: 20, keys: ArrayKeys(values)) { got.append($0) }
        let expected = present.filter { (10..<20).contains(values[$0]) }.map(UInt32.init)
            .sorted { (values[Int($0)], $0) < (values[Int($1)], $1) }
        #expect(got == expected)

        var pairs = present.map { (values[$0], UInt32($0)) }
        let built = OrderedSlotIndex(sorting: &pairs)
        #expect(built.isConsistent(keys: ArrayKeys(values)) && built.count == present.count)
        var rebuilt: [UInt32] = []
        built.visit(lower: 10, upper: 20, keys: ArrayKeys(values)) { rebuilt.append($0) }
        #expect(rebuilt == expected)
    }

    /// Keys like real timestamps (milliseconds over years, plus the extremes and clusters closer
    /// than one hint step of about two seconds), so the comparisons mostly decide on the hints and
    /// sometimes fall back to the record: order, ranges and removals must match brute force.
    @Test func hintsKeepTheOrderOfRealTimestamps() {
        var rng = SeededGenerator(seed: 41)
        let year: Int64 = 365 * 86_400_000
        var values: [Int64] = (0..<6000).map { i in
            switch i % 6 {
            case 0: Int64(rng.next() % UInt64(5 * year)) + 1_600_000_000_000
            case 1: 1_700_000_000_000 + Int64(rng.next() % 300_000)  // within a few hint steps
            case 2: -62_135_596_800_000 + Int64(rng.next() % 1000)  // year 1
            case 3: 253_402_300_799_999 - Int64(rng.next() % 1000)  // year 9999
            case 4: Int64(rng.next() % 2) == 0 ? Int64.max - Int64(rng.next() % 10) : Int64.min + 1 + Int64(rng.next() % 10)
            default: -Int64(rng.next() % UInt64(year))  // before 1970
            }
        }
        #expect(OrderedSlotIndex.hint(-1) < OrderedSlotIndex.hint(0) && OrderedSlotIndex.hint(.min) <= OrderedSlotIndex.hint(.max))
        var index = OrderedSlotIndex()
        for slot in 0..<values.count { index.insert(UInt32(slot), keys: ArrayKeys(values)) }
        for slot in stride(from: 0, to: values.count, by: 4) {
            let removed = index.remove(UInt32(slot), keys: ArrayKeys(values))
            #expect(removed)
            values[slot] = 1_700_000_000_000 + Int64(rng.next() % 1_000_000)
            index.insert(UInt32(slot), keys: ArrayKeys(values))
        }
        #expect(index.isConsistent(keys: ArrayKeys(values)))
        let bounds: [(Int64?, Int64?)] = [(nil, nil), (1_700_000_000_000, 1_700_000_131_072), (1_700_000_065_536, 1_700_000_200_001),
                                          (nil, 0), (0, nil), (-62_135_596_800_000, 1_600_000_000_000), (.min, .max)]
        for (lower, upper) in bounds {
            var got: [UInt32] = []
            index.visit(lower: lower, upper: upper, keys: ArrayKeys(values)) { got.append($0) }
            let expected = (0..<values.count).filter { i in
                (lower.map { values[i] >= $0 } ?? true) && (upper.map { values[i] < $0 } ?? true)
            }.map { UInt32($0) }.sorted { (values[Int($0)], $0) < (values[Int($1)], $1) }
            #expect(got == expected, "range \(String(describing: lower)) ..< \(String(describing: upper))")
        }
        var pairs = values.enumerated().map { ($0.element, UInt32($0.offset)) }
        let built = OrderedSlotIndex(sorting: &pairs)
        #expect(built.isConsistent(keys: ArrayKeys(values)))
    }
}

/// A merge of a batch of slots must leave the index as inserting them one by one would: the same
/// order and ranges, fences that match their chunks, no chunk over the limit.
@Suite struct OrderedSlotIndexMergeTests {
    static func sortedSlots(_ index: OrderedSlotIndex, _ values: [Int64]) -> [UInt32] {
        var slots: [UInt32] = []
        index.visit(lower: nil, upper: nil, keys: ArrayKeys(values)) { slots.append($0) }
        return slots
    }

    /// Batches of every size into indexes of every size: empty, one chunk, many; keys spread wide,
    /// clustered inside one hint step, before and after every key present.
    @Test(arguments: [(0, 500), (5, 3), (100, 1), (100, 40), (3000, 7), (3000, 900), (20_000, 2500), (20_000, 20_000)])
    func mergeMatchesInsertingOneByOne(present: Int, added: Int) {
        var rng = SeededGenerator(seed: UInt64(present &* 31 &+ added))
        let values: [Int64] = (0..<(present + added)).map { i in
            switch rng.next() % 5 {
            case 0: 1_700_000_000_000 + Int64(rng.next() % 2000)  // ties on the hint
            case 1: 1_700_000_000_000 + Int64(rng.next() % 3)  // ties on the key
            case 2: i >= present ? -Int64(rng.next() % 1000) : 1_800_000_000_000  // before everything present
            case 3: i >= present ? 9_000_000_000_000 + Int64(rng.next() % 1000) : 1_650_000_000_000  // after
            default: 1_600_000_000_000 + Int64(rng.next() % 400_000_000_000)
            }
        }
        var merged = OrderedSlotIndex()
        var pairs = (0..<present).map { (values[$0], UInt32($0)) }
        if rng.next() % 2 == 0 {
            merged = OrderedSlotIndex(sorting: &pairs)
        } else {
            for slot in 0..<present { merged.insert(UInt32(slot), keys: ArrayKeys(values)) }
        }
        var inserted = merged
        var batch = (present..<(present + added)).map { (values[$0], UInt32($0)) }.shuffled(using: &rng)
        merged.merge(sorting: &batch, keys: ArrayKeys(values))
        for slot in present..<(present + added) { inserted.insert(UInt32(slot), keys: ArrayKeys(values)) }
        #expect(merged.isConsistent(keys: ArrayKeys(values)))
        #expect(merged.count == present + added)
        #expect(Self.sortedSlots(merged, values) == Self.sortedSlots(inserted, values))
        for (lower, upper) in [(Int64(1_700_000_000_000), Int64(1_700_000_000_002)), (0, 1_700_000_001_000), (-500, 0)] {
            var got: [UInt32] = []
            merged.visit(lower: lower, upper: upper, keys: ArrayKeys(values)) { got.append($0) }
            var expected: [UInt32] = []
            inserted.visit(lower: lower, upper: upper, keys: ArrayKeys(values)) { expected.append($0) }
            #expect(got == expected)
        }
        // A merged index keeps taking inserts and removals.
        for slot in stride(from: 0, to: present + added, by: 7) {
            let removed = merged.remove(UInt32(slot), keys: ArrayKeys(values))
            #expect(removed)
        }
        #expect(merged.isConsistent(keys: ArrayKeys(values)))
    }

    /// Merged chunks stay within the chunk limit however many entries land in one chunk.
    @Test func chunksStayWithinTheirLimit() {
        let values: [Int64] = (0..<10_000).map { $0 < 200 ? Int64($0) * 1000 : 1_000_000 + Int64($0) }
        var index = OrderedSlotIndex()
        var pairs = (0..<200).map { (values[$0], UInt32($0)) }
        index = OrderedSlotIndex(sorting: &pairs)
        var batch = (200..<10_000).map { (values[$0], UInt32($0)) }
        index.merge(sorting: &batch, keys: ArrayKeys(values))
        #expect(index.isConsistent(keys: ArrayKeys(values)))
        #expect(index.largestChunk <= OrderedSlotIndex.chunkLimit)
        #expect(Self.sortedSlots(index, values) == (0..<10_000).map(UInt32.init))
    }
}

@Suite struct PagedArrayTests {
    @Test func copiesShareUntouchedPages() {
        var array = PagedArray<Int>()
        for i in 0..<5000 { array.append(i) }
        let copy = array
        array[10] = -1
        array.append(5000)
        #expect(copy[10] == 10)
        #expect(copy.count == 5000)
        #expect(array[10] == -1 && array.count == 5001)
        array.removeLast(3)
        #expect(array.count == 4998 && array.last == 4997)
    }

    /// A batch reserved at once fills the first page exactly, and appends across the first page's
    /// end still start the next page.
    @Test func reservedBatchesHoldNoSlack() {
        var array = PagedArray<Int>()
        array.reserve(forAppending: 100)
        for i in 0..<100 { array.append(i) }
        // Exactly 100 asked for; the allocator may round up a little (growing one by one ends at 120).
        #expect(array.capacityBytes <= 104 * MemoryLayout<Int>.stride)
        array.reserve(forAppending: 2000)
        for i in 100..<2100 { array.append(i) }
        #expect(array.count == 2100 && array.pageCount == 3)
        #expect(Array(array) == Array(0..<2100))
        array.removeLast(2100 - 1024)
        #expect(array.pageCount == 1 && array.last == 1023)
        array.append(1024)
        #expect(array.pageCount == 2 && array[1024] == 1024)
    }
}

/// Incremental growth: while slots move to the larger table, inserts, removals and lookups by any
/// key see exactly the model's slots, and the count stays exact.
@Suite struct SlotHashIndexGrowthTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func incrementalGrowthMatchesAModel(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var keys: [Int?] = []  // slot -> key, nil when the slot is not indexed (purged or no key)
        var slotsByKey: [Int: Set<UInt32>] = [:]
        var index = SlotHashIndex()
        func hash(_ key: Int) -> Int { Int(truncatingIfNeeded: UInt64(key &+ 7) &* 0x9E37_79B9_7F4A_7C15) }
        func indexedHash(_ slot: UInt32) -> Int? { keys[Int(slot)].map(hash) }
        func hashOf(_ slot: UInt32) -> Int { hash(keys[Int(slot)] ?? -1) }
        var growths = 0
        for _ in 0..<40_000 {
            let roll = rng.next() % 10
            if roll < 6 || keys.isEmpty {
                // A new record: advance any growth, start one when full, then insert (as RecordIndexes does).
                let key: Int? = rng.next() % 8 == 0 ? nil : Int(rng.next() % 3000)  // duplicates and absent keys
                keys.append(key)
                let slot = UInt32(keys.count - 1)
                if let key { slotsByKey[key, default: []].insert(slot) }
                index.migrate(steps: 5, indexedHash: indexedHash)
                if index.needsGrowth {
                    index.beginGrowth(end: slot, indexedHash: indexedHash)
                    growths += 1
                }
                if let key { index.insert(slot, hash: hash(key), hashOf: hashOf) }
            } else if roll < 8 {
                // Change an existing slot's key (remove before, insert after).
                let slot = UInt32(rng.next() % UInt64(keys.count))
                if let key = keys[Int(slot)] {
                    let removed = index.remove(slot, hash: hash(key), hashOf: hashOf)
                    #expect(removed)
                    slotsByKey[key]?.remove(slot)
                }
                let key: Int? = rng.next() % 4 == 0 ? nil : Int(rng.next() % 3000)
                keys[Int(slot)] = key
                if let key { slotsByKey[key, default: []].insert(slot) }
                if let key { index.insert(slot, hash: hash(key), hashOf: hashOf) }
            } else {
                // Look a key up.
                let key = Int(rng.next() % 3000)
                var found: [UInt32] = []
                index.forEach(hash: hash(key), matches: { keys[Int($0)] == key }) { found.append($0) }
                let expected = (slotsByKey[key] ?? []).sorted()
                #expect(found.sorted() == expected, "key \(key)")
                #expect(index.first(hash: hash(key), matches: { keys[Int($0)] == key }).map { expected.contains($0) } ?? expected.isEmpty)
            }
        }
        #expect(growths >= 5, "the run exercised several growths")
        #expect(index.count == keys.compactMap { $0 }.count)
        // Finish any migration and check every key once more.
        index.migrate(steps: Int.max, indexedHash: indexedHash)
        #expect(!index.isMigrating)
        for key in 0..<3000 {
            var found: [UInt32] = []
            index.forEach(hash: hash(key), matches: { keys[Int($0)] == key }) { found.append($0) }
            #expect(found.sorted() == (slotsByKey[key] ?? []).sorted())
        }
    }
}

/// Interning sits behind a 64-entry cache whose slots collide by design: every value must keep one
/// reference however lookups interleave.
@Suite struct InterningTests {
    @Test func referencesStayStableThroughCacheCollisions() {
        var rng = SeededGenerator(seed: 41)
        var strings = StringTable()
        var uuids = UUIDTable()
        let words = (0..<500).map { "value-\($0)-" + String(repeating: "x", count: $0 % 40) }
        let ids = (0..<500).map { _ in UUID16(high: rng.next(), low: rng.next()) }
        var wordRefs: [String: UInt32] = [:]
        var idRefs: [UUID16: UInt32] = [:]
        for _ in 0..<5000 {
            let word = words[Int(rng.next() % 500)]
            let id = ids[Int(rng.next() % 500)]
            let wordRef = strings.intern(word)
            let idRef = uuids.intern(id)
            #expect(wordRefs[word, default: wordRef] == wordRef)
            #expect(idRefs[id, default: idRef] == idRef)
            wordRefs[word] = wordRef
            idRefs[id] = idRef
            #expect(strings.string(wordRef) == word && uuids.uuid(idRef) == id)
        }
        #expect(strings.count == wordRefs.count && uuids.count == idRefs.count)
        #expect(strings.intern(nil) == 0 && uuids.intern(nil) == 0)
        // Rebuilt from its values (a snapshot load), a table finds every value at the same reference.
        let reloaded = UUIDTable(values: uuids.allValues)
        for (id, reference) in idRefs { #expect(reloaded.find(id) == reference) }
        #expect(reloaded.find(UUID16(high: 1, low: 2)) == nil)
    }

    /// References past what a slot index can hold are found through the dictionary behind it.
    @Test func referencesPastTheSlotIndexAreStillFound() {
        var rng = SeededGenerator(seed: 7)
        var values = PagedArray<UUID16>()
        var index = InternIndex<UUID16>(indexedThrough: 10)
        for _ in 0..<50 {
            let id = UUID16(high: rng.next(), low: rng.next())
            values.append(id)
            index.add(UInt32(values.count), of: id, in: values)
        }
        for (offset, id) in values.enumerated() { #expect(index.find(id, in: values) == UInt32(offset + 1)) }
        #expect(index.find(UUID16(high: 3, low: 4), in: values) == nil)
    }
}

/// A table of posting lists answers like a dictionary of sets however its references are spread,
/// and stops being an array once the references in use are sparse.
@Suite struct PostingTableTests {
    @Test(arguments: [(UInt32(40), false), (UInt32(5_000_000), true)])
    func matchesADictionaryOfSets(spread: UInt32, becomesSparse: Bool) {
        var rng = SeededGenerator(seed: UInt64(spread))
        var table = PostingTable()
        var model: [UInt32: Set<UInt32>] = [:]
        for step in 0..<6_000 {
            let reference = UInt32(1 + rng.next() % UInt64(spread))
            let slot = UInt32(step)
            if rng.next() % 4 == 0, let (key, slots) = model.randomElement(using: &rng), let victim = slots.first {
                table.remove(victim, reference: key)
                model[key]!.remove(victim)
                if model[key]!.isEmpty { model[key] = nil }
            } else {
                table.insert(slot, reference: reference)
                model[reference, default: []].insert(slot)
            }
        }
        #expect(table.keyCount == model.count)
        #expect(table.isDense == !becomesSparse)
        for (key, slots) in model { #expect(table[key].slots == slots.sorted()) }
        #expect(table[spread + 1].isEmpty && table[1_000_000_000].isEmpty)
        #expect(table.sizes.entries == model.values.reduce(0) { $0 + $1.count })
    }
}
