import Testing
import LearnStoreModel
@testable import LearnStoreEngine

/// An import that re-sorts the tenant runs on a copy off the lock; its result is taken only if the
/// tenant is still the state it was copied from, and then equals an import in place.
@Suite struct PreparedImportTests {
    static func older(_ record: LearningRecord, _ n: Int) -> LearningRecord {
        var old = record
        old.id = RecordID(milliseconds: 1000 + UInt64(n), randomHigh: 1, randomLow: UInt64(n))
        old.createdAt = Timestamp(milliseconds: 1000 + Int64(n))
        old.updatedAt = old.createdAt
        return old
    }

    @Test func onlyRecordsSortingBeforeTheNewestReorderTheTenant() throws {
        var other = Harness()
        #expect(!Harness().state.importReorders([Self.older(try other.create(), 1)]), "an empty tenant never needs a re-sort")
        var h = Harness()
        let first = try h.create()
        let newest = try h.create()
        #expect(h.state.importReorders([Self.older(newest, 1)]))
        var replaced = first
        replaced.title = "replaced in place"
        #expect(!h.state.importReorders([replaced]), "a replacement keeps its slot")
        var later = newest
        later.id = RecordID(milliseconds: 1_800_000_000_000, randomHigh: 2, randomLow: 2)
        later.createdAt = Timestamp(milliseconds: 1_800_000_000_000)
        #expect(!h.state.importReorders([later]), "a record after the newest is appended")
    }

    @Test func aPreparedImportEqualsAnImportInPlaceAndIsDroppedAfterAWrite() throws {
        var h = Harness()
        for _ in 0..<50 { try h.create() }
        let template = try h.create()
        let imported = (0..<20).map { Self.older(template, $0) }
        var inPlace = h.state
        let direct = try inPlace.importBatch(records: imported, outcomes: [], caller: h.who)

        let prepared = try TenantState.prepareImport(on: h.state, records: imported, outcomes: [], caller: h.who)
        var live = h.state
        let takenOrNil = live.takePrepared(prepared)
        let taken = try #require(takenOrNil)
        #expect(taken.sequence == direct.sequence && taken.result == direct.result)
        #expect(live.sequence == inPlace.sequence)
        #expect(try live.listRecords(ListQuery(limit: 500), caller: h.who).records == inPlace.listRecords(ListQuery(limit: 500), caller: h.who).records)
        // Its undo (the write failing in the log) takes the import back as it would in place.
        let undo = try #require(taken.undo)
        live.undo(undo)
        #expect(try live.listRecords(ListQuery(limit: 500), caller: h.who).records == h.state.listRecords(ListQuery(limit: 500), caller: h.who).records)

        let stale = try TenantState.prepareImport(on: h.state, records: imported, outcomes: [], caller: h.who)
        try h.create()
        let staleTaken = h.state.takePrepared(stale)
        #expect(staleTaken == nil, "the tenant took a write after the copy")
    }
}
