import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol

/// Turns one tenant's WAL records into the changes one subscriber may see, in sequence order: pure,
/// no I/O. It follows the tenant's sequence numbers: a sequence with no WAL record can only be a
/// restore (which replaces the tenant from a snapshot and logs nothing), so a gap becomes
/// `tenant_restore` changes, and a restore the server announces becomes one as soon as every write
/// before it has been read.
struct FeedTranslator: Sendable {
    let tenantID: String
    let caller: CallerIdentity
    /// The first sequence not yet given to the subscriber.
    private(set) var nextSequence: UInt64
    /// The tenant left this group (a partition move released it here): its next changes are in the
    /// group it went to, and the subscription ends once what came before is given.
    private(set) var releasedAfter: UInt64?
    /// Restores not yet given: their sequence, the LSN of the tenant's last write before them, and when.
    private var restores: [(sequence: UInt64, afterLSN: UInt64, at: Timestamp)] = []

    init(tenantID: String, caller: CallerIdentity, after sequence: UInt64) {
        self.tenantID = tenantID
        self.caller = caller
        self.nextSequence = sequence + 1
    }

    /// Every change up to here has been given or was not the subscriber's to see.
    var throughSequence: UInt64 { nextSequence - 1 }

    /// Whether a record of the tenant with this sequence is still to come.
    func wants(_ sequence: UInt64) -> Bool { sequence >= nextSequence }

    /// The tenant was restored: its state became `sequence` after its write at `afterLSN`.
    mutating func restored(sequence: UInt64, afterLSN: UInt64, at time: Timestamp) {
        guard sequence >= nextSequence else { return }
        restores.append((sequence, afterLSN, time))
        restores.sort { $0.sequence < $1.sequence }
    }

    /// The changes in `records` (the tenant's, in LSN order), once the log has been read through
    /// `readThroughLSN`.
    mutating func translate(_ records: [WALRecord], readThroughLSN: UInt64) -> [FeedChange] {
        var changes: [FeedChange] = []
        for record in records where record.entry.tenantID == tenantID {
            let sequence = record.entry.sequence
            guard sequence >= nextSequence, releasedAfter == nil else { continue }
            if record.entry.mutations.contains(.releaseTenant) {
                releasedAfter = sequence - 1
                break
            }
            // A tenant adopted from another group starts here, or the changes copied after it: the
            // sequences skipped were written in that group, not restores of this one.
            if record.entry.mutations.continuesAnotherGroupsSequence { nextSequence = sequence }
            while nextSequence < sequence {
                // Only a restore takes a sequence without a record; it happened before this write.
                let announced = restores.first { $0.sequence == nextSequence }?.at
                changes.append(FeedChange(sequence: nextSequence, timestamp: announced ?? record.entry.timestamp, parts: [.tenantRestore]))
                nextSequence += 1
            }
            let parts = visibleParts(of: record.entry.mutations)
            if !parts.isEmpty { changes.append(FeedChange(sequence: sequence, timestamp: record.entry.timestamp, parts: parts)) }
            nextSequence = sequence + 1
        }
        restores.removeAll { $0.sequence < nextSequence }
        while releasedAfter == nil, let restore = restores.first, restore.afterLSN <= readThroughLSN {
            restores.removeFirst()
            // Every write before the restore has been read: the sequences up to it are restores.
            while nextSequence <= restore.sequence {
                changes.append(FeedChange(sequence: nextSequence, timestamp: restore.at, parts: [.tenantRestore]))
                nextSequence += 1
            }
        }
        return changes
    }

    func visibleParts(of mutations: [TenantMutation]) -> [FeedChange.Part] {
        let readsRecords = caller.scopes.contains(.recordsRead)
        var kind = RecordChangeKindName.put
        for case .recordChange(let logged) in mutations { kind = RecordChangeKindName(rawValue: logged.rawValue) ?? .put }
        var parts: [FeedChange.Part] = []
        for mutation in mutations {
            switch mutation {
            case .putRecords(let records) where readsRecords:
                let visible = caller.appID.map { app in records.filter { $0.appID == app } } ?? records
                if !visible.isEmpty { parts.append(.records(kind, visible)) }
            case .purgeRecords(let ids) where readsRecords:
                parts.append(.purge(ids))
            case .outcomes(let rows) where caller.scopes.contains(.outcomesRead):
                parts.append(.outcomes(rows))
            case .resetTenant:
                parts.append(.tenantRestore)
            default:
                break
            }
        }
        return parts
    }
}
