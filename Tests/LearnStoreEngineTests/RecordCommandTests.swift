import Testing
import LearnStoreModel
import LearnStoreTestSupport
@testable import LearnStoreEngine

@Suite struct CreateAndStampTests {
    @Test func createStampsServerFields() throws {
        var h = Harness()
        let record = try h.create(body(), as: caller(app: "app_1", person: person(77)))
        #expect(record.tenantID == tenantA)
        #expect(record.appID == "app_1")
        #expect(record.createdBy == person(77))
        #expect(record.updatedBy == person(77))
        #expect(record.createdAt == h.now && record.updatedAt == h.now)
        #expect(record.source == "edm")
        #expect(record.sourceType == .api)
        #expect(record.schemaVersion == LearningRecord.currentSchemaVersion)
        #expect(!record.isDeleted && record.deletedAt == nil && record.deletedBy == nil)
        #expect(record.id.description.hasPrefix("lr_"))
        #expect(try h.state.get(record.id, caller: h.who) == record)
        #expect(h.state.sequence == 1)
    }

    @Test func clientMaySetSourceAndSourceType() throws {
        var h = Harness()
        var b = body()
        b.source = .value("lms-import")
        b.sourceType = .value(.backend)
        let record = try h.create(b)
        #expect(record.source == "lms-import")
        #expect(record.sourceType == .backend)
    }

    @Test(arguments: RecordField.allCases.filter(\.isServerStamped))
    func stampedFieldsAreRejectedByName(field: RecordField) {
        var h = Harness()
        var b = body()
        b.stampedFieldsSent = [field]
        #expect(throws: LearnStoreError.validation("\(field.name) is set by the server and cannot be written", field: field.name)) {
            try h.create(b)
        }
        #expect(h.state.store.liveCount == 0)
    }

    @Test func validationRules() {
        var h = Harness()
        func expectField(_ b: RecordBody, _ field: String?, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                try h.create(b)
                Issue.record("accepted an invalid body", sourceLocation: sourceLocation)
            } catch {
                #expect(error.code == .validation, sourceLocation: sourceLocation)
                #expect(error.field == field, sourceLocation: sourceLocation)
            }
        }
        var b = body(); b.personID = .absent; expectField(b, "person_id")
        b = body(); b.personID = .null; expectField(b, "person_id")
        b = body(); b.personID = .value(.zero); expectField(b, "person_id")
        b = body(); b.title = .absent; expectField(b, "title")
        b = body(); b.title = .value(""); expectField(b, "title")
        b = body(); b.title = .value(String(repeating: "x", count: 513)); expectField(b, "title")
        b = body(score: 100.5); expectField(b, "score")
        b = body(score: -1); expectField(b, "score")
        b = body(score: .nan); expectField(b, "score")
        b = body(score: .infinity); expectField(b, "score")
        b = body(); b.provider = .value(String(repeating: "p", count: 257)); expectField(b, "provider")
        b = body(); b.certificationRef = .value(""); expectField(b, "certification_ref")
        b = body(); b.source = .null; expectField(b, "source")
        b = body(); b.sourceType = .null; expectField(b, "source_type")
        b = body(completed: Timestamp(milliseconds: 2000), expires: Timestamp(milliseconds: 1000)); expectField(b, "expires_at")
        b = body(completed: Timestamp(milliseconds: Int64.max)); expectField(b, "completed_at")
        #expect(h.state.store.liveCount == 0)
        #expect(h.state.sequence == 0)
    }

    @Test func fractionalAndBoundaryScoresAreAccepted() throws {
        var h = Harness()
        for score in [0.0, 100.0, 87.35] { #expect(try h.create(body(score: score)).score == score) }
        #expect(try h.create(body(score: nil, passed: nil)).score == nil)
    }

    @Test func idsAreMonotonicEvenWhenTheClockStepsBack() throws {
        var h = Harness()
        let first = try h.create()
        h.now.milliseconds -= 10_000
        let second = try h.create()
        #expect(second.id > first.id)
        #expect(second.createdAt >= first.createdAt)
    }

    @Test func batchIsAllOrNothing() throws {
        var h = Harness()
        var bodies = (0..<5).map { body(person: person(UInt64($0))) }
        bodies[3].score = .value(200)
        do {
            _ = try h.state.createBatch(bodies, caller: h.who, now: h.tick())
            Issue.record("accepted")
        } catch {
            #expect(error.code == .validation)
            #expect(error.message.hasPrefix("record 3:"))
        }
        #expect(h.state.store.liveCount == 0)
        bodies[3].score = .value(20)
        let write = try h.state.createBatch(bodies, caller: h.who, now: h.tick())
        #expect(write.result.count == 5)
        #expect(write.sequence == 1, "one batch is one write")
        #expect(Set(write.result.map(\.id)).count == 5)
    }

    @Test func batchLimit() {
        var state = TenantState(tenantID: tenantA, limits: EngineLimits(maximumBatch: 3))
        #expect(throws: LearnStoreError.self) {
            try state.createBatch(Array(repeating: body(), count: 4), caller: caller(), now: Timestamp(milliseconds: 1))
        }
        #expect(throws: LearnStoreError.self) { try state.createBatch([], caller: caller(), now: Timestamp(milliseconds: 1)) }
    }

    @Test func scopesAreChecked() {
        var h = Harness()
        let readOnly = caller(scopes: [.recordsRead])
        #expect(throws: LearnStoreError(.forbidden, "this operation needs the scope 'records:write'")) { try h.create(body(), as: readOnly) }
        #expect(throws: LearnStoreError.self) { try h.state.purgePerson(person(1), dryRun: true, caller: caller(scopes: [.recordsWrite])) }
        #expect(throws: LearnStoreError.self) { try h.state.listRecords(ListQuery(), caller: caller(scopes: [.recordsWrite])) }
    }
}

@Suite struct IdempotencyTests {
    @Test func retriedCreateReturnsTheFirstResult() throws {
        var h = Harness()
        let first = try h.state.create(body(), caller: h.who, idempotencyKey: "req-1", now: h.tick())
        let retry = try h.state.create(body(), caller: h.who, idempotencyKey: "req-1", now: h.tick())
        #expect(retry.replayed)
        #expect(retry.result == first.result)
        #expect(retry.mutations.isEmpty)
        #expect(h.state.store.liveCount == 1)
        #expect(h.state.sequence == 1)
    }

    @Test func sameKeyDifferentBodyIsAConflict() throws {
        var h = Harness()
        try h.create(body(score: 1), key: "k")
        #expect(throws: LearnStoreError.self) { try h.create(body(score: 2), key: "k") }
    }

    @Test func keysAreScopedByApp() throws {
        var h = Harness()
        let a = try h.create(body(), as: caller(app: "a"), key: "k")
        let b = try h.create(body(), as: caller(app: "b"), key: "k")
        #expect(a.id != b.id)
    }

    @Test func oldestKeysAreEvicted() throws {
        var h = Harness()
        h.state = TenantState(tenantID: tenantA, limits: EngineLimits(idempotencyKeys: 2))
        let first = try h.create(body(), key: "1")
        try h.create(body(), key: "2")
        try h.create(body(), key: "3")
        let again = try h.create(body(), key: "1")
        #expect(again.id != first.id, "key 1 was evicted, so this is a new create")
        #expect(h.state.idempotency.count == 2)
    }
}

@Suite struct PatchDeleteRestoreTests {
    @Test func patchChangesOnlyGivenFieldsAndNullClears() throws {
        var h = Harness()
        let record = try h.create(body(cert: "CRED-1", cohort: person(9)))
        var patch = RecordBody()
        patch.score = .value(55)
        patch.certificationRef = .null
        let updated = try h.state.patch(record.id, patch, caller: caller(person: person(5)), now: h.tick()).result
        #expect(updated.score == 55)
        #expect(updated.certificationRef == nil)
        #expect(updated.title == record.title)
        #expect(updated.linkedCohortID == person(9))
        #expect(updated.updatedBy == person(5))
        #expect(updated.createdBy == record.createdBy)
        #expect(updated.updatedAt > record.updatedAt)
        #expect(try h.ids(ListQuery(certificationRef: "CRED-1")).isEmpty)
    }

    @Test func patchMovesIndexEntries() throws {
        var h = Harness()
        let record = try h.create(body(person: person(1), provider: "AWS", cert: "C-1"))
        var patch = RecordBody()
        patch.personID = .value(person(2))
        patch.provider = .value("Coursera")
        patch.certificationRef = .value("C-2")
        patch.passed = .value(false)
        _ = try h.state.patch(record.id, patch, caller: h.who, now: h.tick())
        #expect(try h.ids(ListQuery(personID: person(1))).isEmpty)
        #expect(try h.ids(ListQuery(personID: person(2))) == [record.id])
        #expect(try h.ids(ListQuery(provider: "AWS")).isEmpty)
        #expect(try h.ids(ListQuery(provider: "Coursera")) == [record.id])
        #expect(try h.ids(ListQuery(certificationRef: "C-1")).isEmpty)
        #expect(try h.ids(ListQuery(certificationRef: "C-2")) == [record.id])
        #expect(try h.ids(ListQuery(passed: true)).isEmpty)
        #expect(try h.ids(ListQuery(passed: false)) == [record.id])
    }

    @Test func optimisticConcurrency() throws {
        var h = Harness()
        let record = try h.create()
        var patch = RecordBody()
        patch.score = .value(1)
        let first = try h.state.patch(record.id, patch, expectedUpdatedAt: record.updatedAt, caller: h.who, now: h.now).result
        #expect(first.updatedAt > record.updatedAt, "updated_at rises even within one millisecond")
        do {
            _ = try h.state.patch(record.id, patch, expectedUpdatedAt: record.updatedAt, caller: h.who, now: h.now)
            Issue.record("stale version accepted")
        } catch {
            #expect(error.code == .conflict)
        }
    }

    @Test func emptyPatchAndStampedFieldsAreRejected() throws {
        var h = Harness()
        let record = try h.create()
        #expect(throws: LearnStoreError.self) { try h.state.patch(record.id, RecordBody(), caller: h.who, now: h.tick()) }
        var patch = RecordBody()
        patch.stampedFieldsSent = [.updatedAt]
        #expect(throws: LearnStoreError.validation("updated_at is set by the server and cannot be written", field: "updated_at")) {
            try h.state.patch(record.id, patch, caller: h.who, now: h.tick())
        }
        var merged = RecordBody()
        merged.expiresAt = .value(Timestamp(milliseconds: 0))
        #expect(throws: LearnStoreError.self) { try h.state.patch(record.id, merged, caller: h.who, now: h.tick()) }
        #expect(try h.state.get(record.id, caller: h.who) == record, "failed patches leave the record untouched")
    }

    @Test func softDeleteAndRestore() throws {
        var h = Harness()
        let record = try h.create()
        let deleted = try h.state.delete(record.id, caller: caller(person: person(3)), now: h.tick())
        #expect(deleted.result.isDeleted)
        #expect(deleted.result.deletedBy == person(3))
        #expect(deleted.result.deletedAt == deleted.result.updatedAt)
        let again = try h.state.delete(record.id, caller: h.who, now: h.tick())
        #expect(again.mutations.isEmpty, "deleting twice is idempotent")
        #expect(again.result == deleted.result)
        #expect(try h.state.get(record.id, caller: h.who).isDeleted, "get returns soft-deleted records")
        #expect(try h.ids(ListQuery()).isEmpty, "lists exclude deleted records by default")
        #expect(try h.ids(ListQuery(includeDeleted: true)) == [record.id])
        var patch = RecordBody()
        patch.score = .value(3)
        #expect(throws: LearnStoreError.self) { try h.state.patch(record.id, patch, caller: h.who, now: h.tick()) }
        let restored = try h.state.restore(record.id, caller: h.who, now: h.tick()).result
        #expect(!restored.isDeleted && restored.deletedAt == nil && restored.deletedBy == nil)
        #expect(try h.ids(ListQuery()) == [record.id])
        #expect(h.state.store.liveCount == 1 && h.state.store.deletedCount == 0)
    }

    @Test func unknownIdIsNotFound() {
        var h = Harness()
        let missing = RecordID(milliseconds: 5, randomHigh: 1, randomLow: 2)
        do { _ = try h.state.get(missing, caller: h.who); Issue.record("found") } catch { #expect(error.code == .notFound) }
        do { _ = try h.state.delete(missing, caller: h.who, now: h.now); Issue.record("found") } catch { #expect(error.code == .notFound) }
    }
}

@Suite struct AppScopingTests {
    @Test func appScopedCallersSeeOnlyTheirApp() throws {
        var h = Harness()
        let human = try h.create(body(person: person(1)))
        let a = try h.create(body(person: person(1)), as: caller(app: "app_a"))
        let b = try h.create(body(person: person(1)), as: caller(app: "app_b"))
        let appA = caller(app: "app_a")
        #expect(try h.ids(ListQuery(personID: person(1)), as: appA) == [a.id])
        #expect(try h.ids(ListQuery(), as: appA) == [a.id])
        #expect(Set(try h.ids(ListQuery(personID: person(1)))) == [human.id, a.id, b.id], "a human session sees all apps")
        for id in [human.id, b.id] {
            #expect(throws: LearnStoreError.self) { try h.state.get(id, caller: appA) }
            #expect(throws: LearnStoreError.self) { try h.state.delete(id, caller: appA, now: h.tick()) }
            var patch = RecordBody()
            patch.score = .value(1)
            #expect(throws: LearnStoreError.self) { try h.state.patch(id, patch, caller: appA, now: h.tick()) }
        }
        #expect(try h.ids(ListQuery(), as: caller(app: "never_used")).isEmpty)
        #expect(try h.state.purgePerson(person(1), dryRun: true, caller: appA).result == 1)
    }
}

@Suite struct PurgeTests {
    @Test func purgeRemovesEveryRecordOfThePerson() throws {
        var h = Harness()
        var mine: [RecordID] = []
        for i in 0..<5 { mine.append(try h.create(body(person: person(1), cert: "C-\(i)")).id) }
        let other = try h.create(body(person: person(2)))
        _ = try h.state.delete(mine[0], caller: h.who, now: h.tick())
        #expect(try h.state.purgePerson(person(1), dryRun: true, caller: h.who).result == 5)
        #expect(h.state.store.liveCount + h.state.store.deletedCount == 6, "dry run changes nothing")
        let purge = try h.state.purgePerson(person(1), dryRun: false, caller: h.who)
        #expect(purge.result == 5)
        #expect(purge.mutations == [.purgeRecords(mine)])
        for id in mine { #expect(throws: LearnStoreError.self) { try h.state.get(id, caller: h.who) } }
        #expect(try h.ids(ListQuery(includeDeleted: true)) == [other.id])
        #expect(try h.ids(ListQuery(certificationRef: "C-1")).isEmpty)
        #expect(h.state.stats.liveRecords == 1)
        #expect(h.state.stats.purgedSlots == 5)
    }
}

@Suite struct StoredEncodingTests {
    @Test func fastEncodingEqualsTheCodec() throws {
        var h = Harness()
        var rng = SeededGenerator(seed: 21)
        for i in 0..<200 {
            var b = body(person: person(rng.next() % 9), score: rng.next() % 3 == 0 ? nil : Double(rng.next() % 1000) / 10,
                         passed: [true, false, nil][Int(rng.next() % 3)], cert: rng.next() % 2 == 0 ? "CRED-\(i)" : nil,
                         cohort: rng.next() % 2 == 0 ? person(50) : nil, assessment: rng.next() % 2 == 0 ? person(UInt64(i)) : nil,
                         expires: rng.next() % 2 == 0 ? Timestamp(milliseconds: 1_800_000_000_000) : nil)
            if i % 5 == 0 { b.provider = .null }
            let app: String? = i % 3 == 0 ? "app_\(i % 4)" : nil
            let record = try h.create(b, as: caller(app: app))
            if i % 7 == 0 { _ = try h.state.delete(record.id, caller: caller(app: app), now: h.tick()) }
        }
        for slot in 0..<UInt32(h.state.store.slotCount) {
            var fast = ByteWriter()
            h.state.store.encode(slot: slot, into: &fast)
            let expected = RecordCodec.encode(h.state.store.record(at: slot))
            #expect(fast.bytes == expected)
            #expect(try RecordCodec.decodeRecord(fast.bytes) == h.state.store.record(at: slot))
        }
    }

    /// Strings over 15 bytes are written from the table's UTF-8 arena, shorter ones from the
    /// `String`: both, at the limits, in several scripts, interned one by one and rebuilt from the
    /// values as a snapshot load does, encode as the codec does.
    @Test func stringsOfEveryLengthEncodeFromTheTableAsTheCodecDoes() throws {
        var h = Harness()
        let titles = ["C", "Exactly 15 byte", "Exactly 16 bytes", "été", String(repeating: "é", count: 8), String(repeating: "é", count: 256),
                      String(repeating: "t", count: RecordValidator.maximumTitleBytes), "日本語のコース名前です", "🎓 certified 🎓"]
        for (index, title) in titles.enumerated() {
            var b = body(person: person(UInt64(index)), title: title, provider: String(repeating: "p", count: 10 + 3 * index))
            b.source = .value(index % 2 == 0 ? "lms" : String(repeating: "s", count: RecordValidator.maximumSourceBytes))
            _ = try h.create(b, as: caller(app: index % 3 == 0 ? nil : "an-application-named-at-length-\(index)"))
        }
        var rebuilt = h.state.store
        rebuilt.strings = StringTable(values: h.state.store.strings.allValues)
        for store in [h.state.store, rebuilt] {
            for slot in 0..<UInt32(store.slotCount) {
                var fast = ByteWriter()
                store.encode(slot: slot, into: &fast)
                #expect(fast.bytes == RecordCodec.encode(store.record(at: slot)))
            }
        }
        #expect(Set(titles).isSubset(of: Set(h.state.store.strings.allValues)))
    }
}
