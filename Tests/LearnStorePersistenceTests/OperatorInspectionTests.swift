import CanvasOutcomes
import Foundation
import LearnStoreEngine
import LearnStoreModel
import Testing
@testable import LearnStorePersistence

/// `wal check | cat | truncate` and `snapshot list | verify | inspect` against real data directories.
@Suite struct OperatorInspectionTests {
    /// Flips one byte of a file in place.
    func corrupt(_ path: String, at offset: Int) throws {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[offset] ^= 0x5A
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Offsets of every record of a data directory's WAL, by LSN.
    func recordOffsets(_ data: DataDirectory) throws -> [UInt64: (segment: String, offset: Int)] {
        var offsets: [UInt64: (String, Int)] = [:]
        try WALInspector.forEachRecord(data) { record, segment, offset in
            offsets[record.lsn] = (segment, offset)
            return true
        }
        return offsets
    }

    @Test func aCleanWALChecksCleanAndCatSeesEveryRecordInOrder() throws {
        let history = try RecordedHistory(writes: 300, snapshotRounds: [])
        let report = try WALInspector.check(history.data)
        #expect(report.segments.count > 1, "64 KiB segments rotate")
        #expect(report.segments.allSatisfy { $0.problem == nil })
        #expect(!report.isCorrupt)
        #expect(report.records == 600 && report.lastLSN == 600)
        var lsns: [UInt64] = []
        let damage = try WALInspector.forEachRecord(history.data, lsns: 15...40) { record, _, _ in
            lsns.append(record.lsn)
            return true
        }
        #expect(damage.isEmpty)
        #expect(lsns == Array(15...40))
        var t2: [UInt64] = []
        try WALInspector.forEachRecord(history.data) { record, _, _ in
            if record.entry.tenantID == "t2" { t2.append(record.entry.sequence) }
            return true
        }
        #expect(t2 == Array(1...300))
        // A range past the first segment skips it.
        var first: UInt64?
        try WALInspector.forEachRecord(history.data, lsns: 590...UInt64.max) { record, _, _ in
            first = first ?? record.lsn
            return true
        }
        #expect(first == 590)
    }

    @Test func aTornTailIsReportedAsSuchAndCorruptionWithSegmentAndOffset() throws {
        let history = try RecordedHistory(writes: 10, snapshotRounds: [])
        let offsets = try recordOffsets(history.data)
        // A torn tail: half a record after the last write, no commit marker after it.
        let last = try #require(history.data.segments(PosixFileSystem()).last)
        let lastPath = history.data.segmentPath(last)
        let end = try WALInspector.check(history.data).segments.last!.dataEnd
        let handle = try #require(FileHandle(forUpdatingAtPath: lastPath))
        try handle.seek(toOffset: UInt64(end))
        try handle.write(contentsOf: [0x40, 0, 0, 0, 1, 2, 3, 4, 5, 6])
        try handle.close()
        let torn = try WALInspector.check(history.data)
        #expect(!torn.isCorrupt)
        #expect(torn.segments.last?.problem.map { if case .tornTail(let offset, _) = $0 { offset == end } else { false } } == true)

        // Corruption: a damaged record with completed writes after it.
        let (segment, offset) = try #require(offsets[5])
        try corrupt(segment, at: offset + 20)
        let damaged = try WALInspector.check(history.data)
        #expect(damaged.isCorrupt)
        let bad = try #require(damaged.segments.first { $0.path == segment })
        #expect(bad.problem.map { if case .corruption(let at, let reason) = $0 { at == offset && reason.contains("checksum") } else { false } } == true)
        // `cat` reads around the damage and says where it was.
        var seen: [UInt64] = []
        let notes = try WALInspector.forEachRecord(history.data) { record, _, _ in
            seen.append(record.lsn)
            return true
        }
        #expect(!seen.contains(5) && seen.contains(6))
        #expect(notes.contains { $0.contains("at byte \(offset)") })

        // Truncating at the damage (as `wal check` reported it) drops LSN 5 on, and the WAL checks clean.
        let plan = try WALInspector.planTruncation(history.data, at: .offset(segmentFirstLSN: try #require(WALSegmentHeader.firstLSN(fromFileName: String(segment.split(separator: "/").last!))), offset: offset))
        #expect(plan.firstDroppedLSN == 5 || plan.firstDroppedLSN == 6, "LSN 5 itself is unreadable")
        #expect(plan.lastDroppedLSN == 20)
        try WALInspector.truncate(plan)
        let after = try WALInspector.check(history.data)
        #expect(!after.isCorrupt && after.segments.allSatisfy { $0.problem == nil })
        #expect(after.lastLSN == 4)
        let recovered = try history.recover()
        #expect(recovered.report.lastLSN == 4)
        #expect(sameData(recovered.states["t1"]!, history.states["t1"]![2]!) && sameData(recovered.states["t2"]!, history.states["t2"]![2]!))
    }

    @Test func truncatingAtAnLSNDropsExactlyThatRecordOnward() throws {
        let history = try RecordedHistory(writes: 30, snapshotRounds: [10])
        let files = try history.files()
        let plan = try WALInspector.planTruncation(history.data, at: .lsn(41))
        #expect(try history.files() == files, "planning changes nothing")
        #expect(plan.droppedRecords == 20)
        #expect(plan.firstDroppedLSN == 41 && plan.lastDroppedLSN == 60)
        #expect(plan.droppedByTenant == ["t1": 10, "t2": 10])
        #expect(plan.snapshotsBeyondCut.isEmpty, "the round-10 snapshots cover LSN 20")
        try WALInspector.truncate(plan)
        #expect(try WALInspector.check(history.data).lastLSN == 40)
        let recovered = try history.recover()
        #expect(sameData(recovered.states["t1"]!, history.states["t1"]![20]!))
        #expect(throws: LearnStoreError.self) { try WALInspector.planTruncation(history.data, at: .lsn(41)) }
    }

    @Test func snapshotsAreListedVerifiedAndInspected() throws {
        let history = try RecordedHistory(writes: 9, snapshotRounds: [4, 8])
        let listings = try SnapshotCatalog.list(history.data)
        #expect(listings.map { "\($0.tenantID)/\($0.sequence)" } == ["t1/4", "t1/8", "t2/4", "t2/8"])
        #expect(listings.allSatisfy { $0.header != nil && $0.fileBytes > 0 && $0.error == nil })
        #expect(try SnapshotCatalog.list(history.data, tenant: "t2").count == 2)

        let path = history.data.snapshotPath("t1", sequence: 8)
        let inspection = try SnapshotCatalog.inspect(path)
        let state = history.states["t1"]![8]!
        #expect(inspection.header.sequence == 8 && inspection.header.tenantID == "t1")
        #expect(inspection.liveRecords == state.store.liveCount && inspection.deletedRecords == state.store.deletedCount)
        #expect(inspection.outcomeEntities[.result] == state.outcomes.tables.results.count)
        #expect(inspection.outcomeTombstones == state.outcomes.tables.tombstones.count)
        #expect(inspection.blocks == 1 && inspection.fileBytes == listings[1].fileBytes)

        for listing in listings { #expect(try SnapshotCatalog.verify(listing.path).sequence == listing.sequence) }
        try corrupt(path, at: inspection.fileBytes - 60)
        let damage = #expect(throws: SnapshotFile.Damage.self) { try SnapshotCatalog.verify(path) }
        #expect(damage?.path == path && damage?.reason.contains("checksum") == true)
        // A snapshot copied under another tenant's directory is caught.
        let misplaced = history.data.tenantDirectory("t2") + "/" + SnapshotHeader.fileName(sequence: 4)
        try FileManager.default.removeItem(atPath: misplaced)
        try FileManager.default.copyItem(atPath: history.data.snapshotPath("t1", sequence: 4), toPath: misplaced)
        let wrongPlace = #expect(throws: SnapshotFile.Damage.self) { try SnapshotCatalog.verify(misplaced) }
        #expect(wrongPlace?.reason.contains("holds tenant t1") == true)
    }

    @Test func offlineSnapshotsCoverTheWALSoTheNextStartReplaysNothing() throws {
        let history = try RecordedHistory(writes: 6, snapshotRounds: [4])
        let results = try OfflineSnapshotter(directory: history.data, tenants: nil, now: Timestamp(milliseconds: 1)).run()
        #expect(results.map(\.sequence) == [6, 6] && results.allSatisfy { $0.path != nil })
        let recovered = try history.recover()
        #expect(recovered.report.walRecordsApplied == 0)
        #expect(recovered.report.tenants["t1"]?.snapshotSequence == 6)
        #expect(sameData(recovered.states["t1"]!, history.states["t1"]![6]!))
        let again = try OfflineSnapshotter(directory: history.data, tenants: ["t2"], now: Timestamp(milliseconds: 1)).run()
        #expect(again.count == 1 && again[0].path == nil, "unchanged since its newest snapshot")
    }
}

/// `export` then `import` gives the same records and outcome data.
@Suite struct ExportImportTests {
    @Test func exportThenImportRoundTripsRecordsAndOutcomeData() throws {
        let history = try RecordedHistory(writes: 20, snapshotRounds: [10])
        let source = try #require(try history.recover().states["t1"])
        #expect(source.outcomes.tables.tombstones.count > 0 && source.store.deletedCount > 0, "the fixture has tombstones and deleted records")
        var text = ""
        var lines: [ExportLine] = []
        TenantExport.forEachLine(of: source) { line in
            lines.append(line)
            text += line.json.serialized + "\n"
        }
        #expect(lines.count == TenantExport.lineCount(of: source))
        // Deterministic: the same state exports to the same text.
        var again = ""
        TenantExport.forEachLine(of: source) { again += $0.json.serialized + "\n" }
        #expect(again == text)

        // Read back from text, into another tenant of the (stopped) data directory, in small batches.
        let parsed = try text.split(separator: "\n").map { try ExportLine(json: try JSONValue.parse(String($0))) }
        #expect(parsed == lines)
        let session = try OfflineImport(directory: history.data, tenantID: "copy")
        var index = 0
        while index < parsed.count {
            try session.apply(Array(parsed[index..<min(parsed.count, index + 7)]))
            index += 7
        }
        #expect(session.total.records == source.store.liveCount + source.store.deletedCount)
        #expect(session.total.outcomesApplied == source.outcomes.tables.recordCount)
        let written = try #require(try session.finish(now: Timestamp(milliseconds: 1)))

        let copy = try #require(try history.recover().states["copy"])
        #expect(written.path.hasSuffix("tenants/copy/" + SnapshotHeader.fileName(sequence: copy.sequence)))
        #expect(allRecords(copy).map { var r = $0; r.tenantID = "t1"; return r } == allRecords(source))
        #expect(copy.outcomes.tables == source.outcomes.tables)
        // Importing the same lines again changes no record's content and no outcome row.
        let second = try OfflineImport(directory: history.data, tenantID: "copy")
        let result = try second.apply(parsed)
        #expect(result.outcomesApplied == 0 && result.outcomesUnchanged == source.outcomes.tables.recordCount)
        second.release()
    }

    @Test func badLinesAreRefusedNamingTheField() throws {
        #expect(throws: LearnStoreError.self) { try ExportLine(json: try JSONValue.parse(#"{"kind":"learning_outcome","tombstone":{"key":"1","digest":"zz"}}"#)) }
        let unknown = #expect(throws: LearnStoreError.self) { try ExportLine(json: try JSONValue.parse(#"{"id":"lr_01M89ZT1K675WMPB76BTT3V4EJ","bogus":1}"#)) }
        #expect(unknown?.field != nil)
        let kind = #expect(throws: LearnStoreError.self) { try ExportLine(json: try JSONValue.parse(#"{"kind":"badge","entity":{}}"#)) }
        #expect(kind?.field == "kind")
    }
}
