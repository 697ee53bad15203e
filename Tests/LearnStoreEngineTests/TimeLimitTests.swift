import Testing
import LearnStoreModel
@testable import LearnStoreEngine

/// A record imported with the last storable updated_at cannot be changed again: the change is refused
/// with a typed error instead of storing a time past the documented range.
@Suite struct UpdatedAtLimitTests {
    @Test func aChangePastTheLastStorableTimeIsRefusedAndTheRecordKept() throws {
        var h = Harness()
        let created = try h.create(body())
        var imported = created
        imported.updatedAt = .maximum
        _ = try h.state.importRecords([imported], caller: h.who)
        let sequence = h.state.sequence
        var rename = RecordBody()
        rename.title = .value("renamed")
        let writes: [(String, (inout Harness) throws(LearnStoreError) -> Void)] = [
            ("patch", { (h) throws(LearnStoreError) in _ = try h.state.patch(created.id, rename, caller: h.who, now: h.tick()) }),
            ("delete", { (h) throws(LearnStoreError) in _ = try h.state.delete(created.id, caller: h.who, now: h.tick()) }),
        ]
        for (name, write) in writes {
            let error = #expect(throws: LearnStoreError.self, "\(name)") { try write(&h) }
            #expect(error?.code == .validation && error?.field == "updated_at", "\(name): \(String(describing: error))")
        }
        #expect(try h.state.get(created.id, caller: h.who) == imported)
        #expect(h.state.sequence == sequence)
    }
}

@Suite struct ImportedTimeRangeTests {
    @Test func anImportedRecordOutsideTheStoredBoundsIsRefusedAndNothingStored() throws {
        var h = Harness()
        let created = try h.create(body())
        let sequence = h.state.sequence
        var late = created
        late.expiresAt = Timestamp(milliseconds: .max)
        var early = created
        early.createdAt = Timestamp(milliseconds: .min + 1)
        // A certification reference longer than a u16 would trap where the engine stores its length.
        var long = created
        long.certificationRef = String(repeating: "x", count: 70_000)
        for record in [late, early, long] {
            let error = #expect(throws: LearnStoreError.self) { _ = try h.state.importRecords([record], caller: h.who) }
            #expect(error?.code == .validation)
        }
        #expect(try h.state.get(created.id, caller: h.who) == created)
        #expect(h.state.sequence == sequence)
    }
}

@Suite struct SlotCapacityTests {
    @Test func aWriteNeedingMoreSlotsThanTheIndexesHoldIsRefused() throws {
        let capacity = Int(SlotHashIndex.maximumSlot) + 1
        try TenantState.checkSlotCapacity(used: capacity - 10, adding: 10)
        #expect(throws: LearnStoreError.self) { try TenantState.checkSlotCapacity(used: capacity - 10, adding: 11) }
        #expect(throws: LearnStoreError.self) { try TenantState.checkSlotCapacity(used: capacity, adding: 1) }
    }
}
