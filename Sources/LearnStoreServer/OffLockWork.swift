import CanvasOutcomes
import Dispatch
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol

/// Work that scales with a tenant's size and that a batch waits for off the tenant's lock (on
/// another thread, while other event loops' requests for the tenant go on), instead of doing it
/// under the lock when it runs:
/// - after a write burst, the secondary indexes a LIST, STATS or PURGE_PERSON reads, when catching
///   them up in place would take a millisecond or more (`TenantState+IndexBuild`);
/// - an IMPORT of records older than the tenant's newest, which re-sorts and rebuilds the tenant
///   (`TenantState+PreparedImport`): run on a copy, its result swapped in when the batch runs.
/// The batch then runs as usual; what changed in between is caught up (index slots appended since the
/// copy) or redone in place (an import whose tenant took a write meanwhile).
enum OffLockWork {
    case indexBuild(TenantState.IndexBuild)
    case importOnCopy(index: Int, copy: TenantState, records: [LearningRecord], outcomeRows: [OutcomeRecord], caller: CallerIdentity)

    /// The work `frames` should wait for, if any. Takes the tenant's lock briefly to decide (and to
    /// copy the records: O(pages), copy-on-write).
    static func needed(by frames: [Frame], prepared: [Int: PreparedPayload]?, session: Session, tenant: TenantActor) -> OffLockWork? {
        let byPosition = (prepared ?? [:]).sorted { $0.key < $1.key }
        for (index, payload) in byPosition where frames[index].header.opcode == Opcode.adminImport && session.identity.scopes.contains(.admin) {
            guard case .importBatch(let records, let rows) = payload else { continue }
            let copy = tenant.withExclusiveAccess { tenant -> TenantState? in
                !tenant.isLoading && tenant.state.importReorders(records) ? tenant.state : nil
            }
            if let copy { return .importOnCopy(index: index, copy: copy, records: records, outcomeRows: rows, caller: session.identity) }
        }
        if frames.contains(where: { readsSecondaryIndexes($0.header.opcode) }), let build = tenant.withExclusiveAccess({ $0.indexBuildForRead() }) {
            return .indexBuild(build)
        }
        return nil
    }

    static func readsSecondaryIndexes(_ opcode: UInt8) -> Bool {
        opcode == Opcode.list || opcode == Opcode.stats || opcode == Opcode.purgePerson
    }

    /// Runs the work off the event loop; `done` (on another thread) gets the batch's prepared
    /// payloads, an import's result in its place.
    func start(
        tenant: TenantActor, builds: IndexBuildQueue, prepared: [Int: PreparedPayload]?,
        done: @escaping @Sendable ([Int: PreparedPayload]?) -> Void
    ) {
        switch self {
        case .indexBuild(let build):
            builds.build(build, for: tenant) { done(prepared) }
        case .importOnCopy(let index, let copy, let records, let rows, let caller):
            DispatchQueue.global(qos: .userInitiated).async {
                var payloads = prepared ?? [:]
                // A refusal (validation, scope) is answered when the batch runs: the import runs in
                // place then and fails before it changes anything.
                if let ready = try? TenantState.prepareImport(on: copy, records: records, outcomes: rows, caller: caller) {
                    payloads[index] = .importPrepared(ready)
                }
                done(payloads)
            }
        }
    }
}
