import LearnStoreModel
import Testing
@testable import LearnStoreEngine

/// A soft deletion's time and author and a schema version other than 1 live beside the records
/// (``SparseFieldTable``), so that a record is 112 bytes: every path that changes a slot keeps the
/// table in step with the records.
@Suite struct SparseFieldsTests {
    /// The memory target of a record depends on it; a new field belongs in ``SparseFields`` unless
    /// most records set it.
    @Test func aStoredRecordIs112Bytes() {
        #expect(MemoryLayout<StoredRecord>.stride == 112)
    }

    /// Every slot's record as the engine reads it and as the wire encoding writes it straight from
    /// stored form (the two must agree).
    func records(_ state: TenantState) -> [LearningRecord] {
        (0..<UInt32(state.store.slotCount)).filter { !state.store[$0].isPurged }.map { slot in
            let record = state.store.record(at: slot)
            var direct = ByteWriter()
            state.store.encode(slot: slot, into: &direct)
            var viaRecord = ByteWriter()
            RecordCodec.encode(record, into: &viaRecord)
            #expect(direct.bytes == viaRecord.bytes)
            return record
        }
    }

    @Test func aDeletionIsKeptBesideTheRecordUntilItIsRestoredOrPurged() throws {
        var harness = Harness()
        let kept = try harness.create(body(person: person(1)))
        let deleted = try harness.create(body(person: person(2)))
        let deleter = caller(person: person(9))
        let at = harness.tick()
        _ = try harness.state.delete(deleted.id, caller: deleter, now: at)
        #expect(harness.state.store.sparseFields.count == 1)
        let afterDelete = records(harness.state)
        #expect(afterDelete.map(\.deletedAt) == [nil, at])
        #expect(afterDelete.map(\.deletedBy) == [nil, person(9)])
        #expect(afterDelete[0] == harness.state.store.record(at: 0))
        #expect(try harness.state.get(kept.id, caller: harness.who).deletedAt == nil)

        _ = try harness.state.restore(deleted.id, caller: deleter, now: harness.tick())
        #expect(harness.state.store.sparseFields.count == 0)
        #expect(!harness.state.store[1].flags.contains(.hasSparseFields))
        #expect(records(harness.state).map(\.deletedAt) == [nil, nil])

        _ = try harness.state.delete(deleted.id, caller: deleter, now: harness.tick())
        _ = try harness.state.purgePerson(person(2), dryRun: false, caller: harness.who)
        #expect(harness.state.store.sparseFields.count == 0)
        #expect(records(harness.state).map(\.id) == [kept.id])
    }

    /// Undoing a failed write puts the old record back with its sparse fields, and a put that no
    /// longer has them clears the entry.
    @Test func undoRestoresTheSparseFieldsOfTheRecordItPutsBack() throws {
        var harness = Harness()
        let record = try harness.create()
        let write = try harness.state.delete(record.id, caller: caller(person: person(7)), now: harness.tick())
        let deletedState = records(harness.state)
        let restore = try harness.state.restore(record.id, caller: harness.who, now: harness.tick())
        #expect(harness.state.store.sparseFields.count == 0)
        harness.state.undo(try #require(restore.undo))
        #expect(records(harness.state) == deletedState)
        #expect(harness.state.store.sparseFields.count == 1)
        harness.state.undo(try #require(write.undo))
        #expect(records(harness.state).map(\.deletedAt) == [nil])
        #expect(harness.state.store.sparseFields.count == 0)
    }

    @Test func aSchemaVersionOtherThanOneIsKept() throws {
        var state = TenantState(tenantID: tenantA)
        var record = LearningRecord(id: RecordID(high: 1, low: 1), tenantID: tenantA, createdAt: Timestamp(milliseconds: 5),
                                    updatedAt: Timestamp(milliseconds: 5), personID: person(1))
        record.schemaVersion = 2
        var plain = record
        plain.id = RecordID(high: 1, low: 2)
        plain.schemaVersion = 1
        state.apply([.putRecords([record, plain])], sequence: 1)
        #expect(records(state).map(\.schemaVersion) == [2, 1])
        #expect(state.store.sparseFields.count == 1)
    }

    /// A copy (a snapshot's capture) keeps the fields it was taken with while the tenant changes.
    @Test func aCopyOfTheTableIsUntouchedByLaterWrites() {
        var table = SparseFieldTable()
        table[3] = SparseFields(deletedAt: 10, deletedBy: 1)
        table[5_000] = SparseFields(schemaVersion: 3)
        let copy = table
        table[3] = nil
        table[5_000] = SparseFields(schemaVersion: 4)
        table[9] = SparseFields(deletedAt: 11)
        #expect(copy[3] == SparseFields(deletedAt: 10, deletedBy: 1))
        #expect(copy[5_000] == SparseFields(schemaVersion: 3))
        #expect(copy[9] == nil)
        #expect(copy.count == 2)
        #expect(table[3] == nil && table[5_000] == SparseFields(schemaVersion: 4) && table[9] == SparseFields(deletedAt: 11))
        #expect(table.count == 2)
        #expect(table[UInt32.max] == nil)
    }
}
