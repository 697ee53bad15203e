import LearnStoreEngine
import LearnStoreModel

/// Online restores (RESTORE_TENANT) driven as the server drives them (PersistenceService.restore):
/// the tenant's writes made durable, the tenant rebuilt from one of its kept snapshots by recovery's
/// read-only code, the result written as its newest snapshot and swapped in, or, half the time, logged
/// as one write (as with replication on). Once acknowledged the tenant equals the snapshot it was
/// restored from (checked at once), and that survives every crash (the restore joins the tenant's
/// history as a durable write).
extension DurabilitySimulation {
    mutating func restoreOnline() throws {
        let writers = writingTenants
        guard !writers.isEmpty else { return }
        let tenant = writers[random.next(below: writers.count)]
        let actor = actors[tenant]!
        guard !rollbacks.contains(tenant: tenant) else { return }
        let kept = (try PersistenceController.keptSnapshots(directory, fs))[tenant] ?? []
        guard !kept.isEmpty else { return }
        let source = kept[random.next(below: kept.count)]
        // The server waits until the tenant's last writes are durable; it refuses while the WAL fails.
        let unresolved = actor.withExclusiveAccess { $0.observedLSN }
        guard runWriterUntilCommitted(unresolved), !wal.hasFailed(unresolved), !rollbacks.contains(tenant: tenant) else {
            note("\(tenant) restore refused: its writes are not durable")
            return
        }
        let point = RestorePoint(snapshotSequence: source.sequence, sequence: source.sequence)
        let rebuilt: Recovery.Outcome
        do {
            rebuilt = try TenantRestore.rebuild(TenantRestore.recoveryOptions(directory, tenants: [tenant], point: point, fileSystem: fs))
        } catch {
            // A snapshot with a flipped bit is refused by name, as at a start (the server answers the error).
            if flippedFiles.contains(where: "\(error)".contains) {
                note("\(tenant) restore from snapshot \(source.sequence) refused: \(error)")
                return
            }
            throw SimulationFailure("tenant \(tenant): restore from its kept snapshot \(source.sequence) could not rebuild it: \(error)")
        }
        let (current, lastLSN) = actor.withExclusiveAccess { ($0.state, $0.lastWriteLSN) }
        let (plan, state) = try TenantRestore.plan(
            tenantID: tenant, point: point, current: current, currentLSN: lastLSN, restored: rebuilt, dryRun: false)
        guard let restoredFrom = history[tenant]?.first(where: { $0.sequence == source.sequence }) else {
            throw SimulationFailure("tenant \(tenant): kept snapshot \(source.sequence) is not a state of its history")
        }
        let expected = restoredFrom.digest &- source.sequence &* Self.sequenceWeight &+ plan.newSequence &* Self.sequenceWeight
        guard Self.digest(state) == expected else {
            throw SimulationFailure("tenant \(tenant): restored from snapshot \(source.sequence), it differs from the state that snapshot holds")
        }
        // Half the restores, as a server with replication on makes them: one write (chosen by the
        // sequence, not drawn: one more draw would change every later step).
        if plan.newSequence % 2 == 0 {
            try restoreAsWrite(tenant, state: state, sequence: plan.newSequence, expected: expected, from: source.sequence)
            return
        }
        do {
            _ = try controller.writeRestoredSnapshot(state, lsn: lastLSN)
        } catch let error as PersistenceController.RestoreOutcomeUncertain {
            // As the server does: the tenant takes no write until a restart, which may find it restored.
            note("\(tenant) restore from snapshot \(source.sequence) uncertain, the tenant stays LOADING: \(error)")
            loadingUntilRestart.insert(tenant)
            uncertainRestores[tenant] = Applied(sequence: plan.newSequence, lsn: lastLSN, digest: expected, acknowledged: true, isRestore: true)
            return
        } catch let error as SnapshotFile.RenamedNotSynced {
            // Renamed into place, then the directory sync failed: the controller removed it again.
            result.restoresTakenBack += 1
            note("\(tenant) restore from snapshot \(source.sequence) failed after its rename, file removed: \(error)")
            return
        } catch {
            note("\(tenant) restore from snapshot \(source.sequence) failed: \(error)")
            return
        }
        actor.withExclusiveAccess { $0.replace(with: state, lsn: lastLSN) }
        history[tenant, default: []].append(Applied(sequence: plan.newSequence, lsn: lastLSN, digest: expected, acknowledged: true, isRestore: true))
        result.restores += 1
        touched.insert(tenant)
        note("\(tenant) restored from snapshot \(source.sequence) as sequence \(plan.newSequence) (LSN \(lastLSN))")
    }

    /// The restore logged as a write (``TenantActor/logRestore(_:sequence:)``): acknowledged when the
    /// log makes it durable like any write, taken back if the log fails it, and what recovery replays.
    private mutating func restoreAsWrite(_ tenant: String, state: TenantState, sequence: UInt64, expected: UInt64, from snapshot: UInt64) throws {
        let before = history[tenant]?.count ?? 0
        try applyWrite(tenant) { actor in
            actor.setLoading(true)
            defer { actor.setLoading(false) }
            guard let lsn = try? actor.logRestore(TenantState.restoringWrite(of: state), sequence: sequence) else { return nil }
            return (sequence, lsn)
        }
        guard (history[tenant]?.count ?? 0) > before else {
            note("\(tenant) restore from snapshot \(snapshot) as a write refused by the log")
            return
        }
        guard history[tenant]?.last?.digest == expected else {
            throw SimulationFailure("tenant \(tenant): restored from snapshot \(snapshot) as a write, it differs from the state that snapshot holds")
        }
        result.restores += 1
        result.restoresAsWrites += 1
        note("\(tenant) restored from snapshot \(snapshot) as the write of sequence \(sequence)")
    }
}
