import CanvasOutcomes
import LearnStoreModel

/// How far the export of a tenant for a partition move has got: a section of the tenant and the
/// position in it (a slot, the n-th outcome row, the n-th idempotency key).
public struct TenantExportCursor: Sendable, Hashable {
    public enum Section: UInt8, Sendable, CaseIterable {
        case records = 0
        case outcomes = 1
        case idempotency = 2
    }

    public var section: Section
    public var offset: UInt64

    public init(section: Section, offset: UInt64) {
        self.section = section
        self.offset = offset
    }

    public static let start = TenantExportCursor(section: .records, offset: 0)
}

extension TenantState {
    /// The tenant as writes that rebuild it, one piece at a time (a partition move: docs/CLUSTER.md,
    /// "Moving a partition"): every record (deleted ones too), every outcome row (tombstones too) and
    /// every idempotency key, oldest first. A piece holds at most `maximumItems` of them; `next` is
    /// where the following piece starts, nil after the last. The tenant must take no write between
    /// pieces (the source fences the partition first), or pieces may miss or repeat items.
    public func exportPiece(from cursor: TenantExportCursor, maximumItems: Int) -> (mutations: [TenantMutation], next: TenantExportCursor?) {
        let budget = max(1, maximumItems)
        var mutations: [TenantMutation] = []
        var position: TenantExportCursor? = cursor
        var taken = 0
        while taken < budget, let current = position {
            switch current.section {
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
                var rows: [OutcomeRecord] = []
                var index: UInt64 = 0
                var more = false
                outcomes.tables.forEachRecord { row in
                    defer { index += 1 }
                    guard index >= current.offset, !more else { return }
                    if taken < budget {
                        rows.append(row)
                        taken += 1
                    } else {
                        more = true
                    }
                }
                if !rows.isEmpty { mutations.append(.outcomes(rows)) }
                position = more ? TenantExportCursor(section: .outcomes, offset: current.offset + UInt64(rows.count))
                    : TenantExportCursor(section: .idempotency, offset: 0)
            case .idempotency:
                let entries = idempotency.entriesInOrder
                let first = min(entries.count, Int(clamping: current.offset))
                let last = min(entries.count, first + (budget - taken))
                for entry in entries[first..<last] { mutations.append(.rememberIdempotencyKey(entry)) }
                taken += last - first
                position = last < entries.count ? TenantExportCursor(section: .idempotency, offset: UInt64(last)) : nil
            }
        }
        return (mutations, position)
    }
}
