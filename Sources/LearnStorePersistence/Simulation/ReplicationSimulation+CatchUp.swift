import LearnStoreEngine
import LearnStoreModel

/// Snapshots with WAL retention on every node, and the copy a replica takes when its primary's log no
/// longer holds its next record (``CatchUpSource``, ``CatchUpWriter``, ``CatchUpInstall``: the
/// server's own code; only the connection is simulated). A copy may be cut short by the connection or
/// by the replica's disk, the replica's machine may crash with the copy complete but not installed,
/// and the install may fail on a failing disk and be repeated at the next start.
extension ReplicationSimulation {
    /// Every tenant of `node` is snapshotted once its captured writes are committed; retention then
    /// removes the WAL segments the snapshots cover.
    mutating func snapshotRound(on node: Node) {
        guard node.alive, let wal = node.wal, let controller = node.controller else { return }
        let captured = tenantIDs.map { tenant in
            let (capture, lsn, unresolved) = node.actors[tenant]!.withExclusiveAccess { $0.captureForSnapshot() }
            return PersistenceController.SnapshotCapture(capture: capture, lsn: lsn, unresolved: unresolved)
        }
        let captures = controller.selectForRound(captured, force: true).write
        if node.role == .primary { primaryWriterStep() } else { wal.runWriterStep() }
        // A primary's snapshot waits for replication, as its replies do (a replica's, for its own log
        // only): a round that would wait is skipped.
        guard wal.snapshotResolvedLSN >= captures.flatMap(\.unresolved).max() ?? 0, !wal.hasFailures else { return }
        let before = wal.segmentFirstLSNs
        let written = controller.writeSnapshots(captures, parallel: false, compressors: 1)
        result.snapshots += written.filter { $0.error == nil && !$0.skipped }.count
        note("\(node.id) snapshot round: \(written.filter { $0.error == nil }.count) written, segments \(before.first ?? 0)… → \(wal.segmentFirstLSNs.first ?? 0)…")
    }

    /// `replica` needs the records after `lsn`, which `primary`'s log no longer holds: it stops,
    /// receives a copy of the primary's files, and starts again from it.
    mutating func catchUp(_ replica: Node, from primary: Node, after lsn: UInt64) throws {
        guard let wal = primary.wal else { return }
        note("\(replica.id) needs the records after LSN \(lsn), no longer in \(primary.id)'s log: it copies \(primary.id)")
        if replica.alive { crash(replica) }
        let capture: WALSegmentCapture
        do { capture = try CatchUpSource.capture(wal) } catch {
            note("\(primary.id) cannot be copied: \(error)")
            return
        }
        // The primary's writer makes the captured records durable (a thread of its own in the server).
        for _ in 0..<20 where wal.locallyDurableLSN < capture.lastLSN && !wal.hasFailures { primaryWriterStep() }
        guard wal.locallyDurableLSN >= capture.lastLSN else {
            capture.close()
            return
        }
        let source = try CatchUpSource.open(capture, data: primary.directory, fileSystem: primary.fs)
        defer { source.close() }
        var random = SplitMix64(seed: seed ^ UInt64(step) &* 0xC2B2_AE3D_27D4_EB4F)
        let faults = !healing
        let cutAfter = faults && random.chance(1, in: 4) ? random.next(below: max(1, source.totalBytes)) : nil
        if faults && random.chance(1, in: 5) { replica.fs.rates.writeError = 50_000 }
        let complete = receive(source, into: replica, cutAfter: cutAfter)
        replica.fs.rates = SimulatedFileSystem.FaultRates()
        if !complete {
            result.catchUpsInterrupted += 1
            replica.fs.machineCrash()
            return
        }
        result.catchUps += 1
        if faults && random.chance(1, in: 3) {
            // The machine crashes with the copy complete: the next start installs it.
            replica.fs.machineCrash()
        }
        if faults && random.chance(1, in: 4) {
            // The install fails on a failing disk; the node stays down and installs at its next start.
            replica.fs.rates.renameError = 300_000
            replica.fs.rates.syncError = 200_000
            let failed: Bool
            do { failed = try CatchUpInstall.resume(replica.directory, historyDirectory: replica.historyDirectory, replica.fs) == nil } catch {
                failed = true
            }
            replica.fs.rates = SimulatedFileSystem.FaultRates()
            if failed {
                result.catchUpsInterrupted += 1
                note("\(replica.id)'s install failed on its disk; it stays down")
                replica.fs.machineCrash()
                return
            }
        }
        try restart(replica)
    }

    /// The copy as the replica's side receives it, over a connection that may break after `cutAfter`
    /// bytes. Returns whether the copy is complete.
    private mutating func receive(_ source: CatchUpSource, into replica: Node, cutAfter: Int?) -> Bool {
        let writer: CatchUpWriter
        do { writer = try CatchUpWriter(data: replica.directory, fileSystem: replica.fs) } catch { return false }
        do throws(LearnStoreError) {
            try writer.begin(files: source.files.count, bytes: source.totalBytes, throughLSN: source.throughLSN)
            for file in source.files {
                try writer.file(path: file.path, size: file.size, sentBytes: file.sentBytes)
                var offset = 0
                while offset < file.sentBytes {
                    let count = min(1 << 12, file.sentBytes - offset)
                    if let cutAfter, writer.receivedBytes + count > cutAfter {
                        note("the copy to \(replica.id) broke after \(writer.receivedBytes) bytes")
                        return false
                    }
                    let bytes: [UInt8]
                    do { bytes = try file.file.read(count: count, at: offset) } catch { throw error.learnStoreError }
                    try writer.data(bytes)
                    offset += count
                }
            }
            try writer.finish(history: primaryHistoryForCopy())
            return true
        } catch {
            note("the copy to \(replica.id) failed: \(error)")
            return false
        }
    }

    /// The epochs a copy carries: the primary's, without its promise.
    private func primaryHistoryForCopy() throws(LearnStoreError) -> EpochHistory {
        guard let primary else { throw LearnStoreError(.notPrimary, "no primary") }
        do { return try EpochHistory(starts: primary.history.starts) } catch { throw LearnStoreError(.internalError, "\(error)") }
    }
}
