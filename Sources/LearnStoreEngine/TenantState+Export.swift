import CanvasOutcomes
import LearnStoreModel

/// How far the export of a tenant for a partition move has got: a section of the tenant and the
/// position in it (a slot, the n-th outcome row, the n-th idempotency key).
public struct TenantExportCursor: Sendable, Hashable {
    public enum Section: UInt8, Sendable, CaseIterable {
        case records = 0
        case outcomes = 1
        case idempotency = 2
        /// The records a ``TenantChangeSet`` names, in id order: the first section of a tenant's changes.
        case changedRecords = 3
        /// The outcome rows a ``TenantChangeSet`` names, as they are now.
        case changedOutcomes = 4
    }

    public var section: Section
    public var offset: UInt64

    public init(section: Section, offset: UInt64) {
        self.section = section
        self.offset = offset
    }

    public static let start = TenantExportCursor(section: .records, offset: 0)
    /// Where a tenant's changes since its first copy start (``TenantChangeSet``).
    public static let changesStart = TenantExportCursor(section: .changedRecords, offset: 0)
}

extension TenantState {
    /// The tenant as writes that rebuild it, one piece at a time (a partition move: docs/CLUSTER.md,
    /// "Moving a partition"): every record (deleted ones too), every outcome row (tombstones too) and
    /// every idempotency key, oldest first. A piece holds at most `maximumItems` of them; `next` is
    /// where the following piece starts, nil after the last. Pieces read while the tenant takes
    /// writes may miss or repeat items: only its changes since (``TenantChangeSet``), read once it
    /// takes none, make such a copy exact.
    ///
    /// From ``TenantExportCursor/changesStart`` with `changes`, the pieces hold what changed: each
    /// record the set names as it is now (a purge when it is gone), each outcome row it names as it is
    /// now, and, if they changed, every key after forgetting those the tenant holds. Applied after the
    /// first copy they give the tenant as it is now, unless ``TenantChangeSet/needsWholeCopy(of:)``.
    /// `outcomeTables` (the tables when a tracked copy began) is where the outcome rows section reads.
    public func exportPiece(from cursor: TenantExportCursor, maximumItems: Int, changes: ChangedItems? = nil, outcomeTables: OutcomeTables? = nil)
        -> (mutations: [TenantMutation], next: TenantExportCursor?)
    {
        let budget = max(1, maximumItems)
        var mutations: [TenantMutation] = []
        var position: TenantExportCursor? = cursor
        var taken = 0
        while taken < budget, let current = position {
            switch current.section {
            case .changedRecords:
                let ids = changes?.records ?? []
                let first = min(ids.count, Int(clamping: current.offset))
                let last = min(ids.count, first + (budget - taken))
                var records: [LearningRecord] = []
                var purged: [RecordID] = []
                for id in ids[first..<last] {
                    if let slot = indexes.slot(of: id, in: store), !store[slot].isPurged {
                        records.append(store.record(at: slot))
                    } else {
                        purged.append(id)
                    }
                }
                taken += last - first
                if !records.isEmpty { mutations += [.putRecords(records), .recordChange(.import)] }
                if !purged.isEmpty { mutations.append(.purgeRecords(purged)) }
                if last < ids.count {
                    position = TenantExportCursor(section: .changedRecords, offset: UInt64(last))
                } else {
                    position = TenantExportCursor(section: .changedOutcomes, offset: 0)
                }
            case .changedOutcomes:
                let keys = changes?.outcomeRows ?? []
                let first = min(keys.count, Int(clamping: current.offset))
                let last = min(keys.count, first + (budget - taken))
                // A key holds one row, live or tombstone; a row a write took back is not here, and
                // such a tenant is copied whole (``TenantChangeSet/needsWholeCopy(of:)``).
                let rows = keys[first..<last].compactMap { outcomes.record(kind: $0.kind, key: $0.key) }
                taken += last - first
                if !rows.isEmpty { mutations.append(.outcomes(rows)) }
                if last < keys.count {
                    position = TenantExportCursor(section: .changedOutcomes, offset: UInt64(last))
                } else {
                    position = changes?.keys ?? false ? TenantExportCursor(section: .idempotency, offset: 0) : nil
                }
            case .records:
                var records: [LearningRecord] = []
                var slot = Int(clamping: current.offset)
                while slot < store.slotCount && taken < budget {
                    if !store[UInt32(slot)].isPurged {
                        records.append(store.record(at: UInt32(slot)))
                        taken += 1
                    }
                    slot += 1
                }
                if !records.isEmpty { mutations += [.putRecords(records), .recordChange(.import)] }
                position = slot < store.slotCount ? TenantExportCursor(section: .records, offset: UInt64(slot)) : TenantExportCursor(section: .outcomes, offset: 0)
            case .outcomes:
                let tables = outcomeTables ?? outcomes.tables
                let first = Int(clamping: current.offset)
                let rows = tables.records(from: first, limit: budget - taken)
                taken += rows.count
                let more = first + rows.count < tables.recordCount
                if !rows.isEmpty { mutations.append(.outcomes(rows)) }
                if more {
                    position = TenantExportCursor(section: .outcomes, offset: current.offset + UInt64(rows.count))
                } else {
                    position = changes?.keys ?? true ? TenantExportCursor(section: .idempotency, offset: 0) : nil
                }
            case .idempotency:
                let entries = idempotency.entriesInOrder
                let first = min(entries.count, Int(clamping: current.offset))
                let last = min(entries.count, first + (budget - taken))
                // Changed keys replace the first copy's: it may have missed or kept keys the table
                // pushed out meanwhile, and the order decides which go next.
                if first == 0 && changes?.keys == true { mutations.append(.forgetIdempotencyKeys) }
                for entry in entries[first..<last] { mutations.append(.rememberIdempotencyKey(entry)) }
                taken += last - first
                position = last < entries.count ? TenantExportCursor(section: .idempotency, offset: UInt64(last)) : nil
            }
        }
        return (mutations, position)
    }
}

extension TenantState {
    /// The one write that makes a tenant `restored` whatever it holds now: it empties the tenant and
    /// puts back every record (deleted ones too), outcome row and idempotency key `restored` holds.
    /// An online restore logs it where the restore must reach replicas (``TenantActor/logRestore(_:sequence:)``).
    public static func restoringWrite(of restored: TenantState) -> [TenantMutation] {
        // A budget no tenant reaches, far enough from Int.max that offsets plus it cannot overflow.
        [.resetTenant] + restored.exportPiece(from: .start, maximumItems: 1 << 48).mutations
    }
}
