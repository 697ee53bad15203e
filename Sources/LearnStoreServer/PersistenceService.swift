import Dispatch
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// Recovery, the WAL and snapshot rounds as a `Service`. It starts with the server already
/// listening (answering LOADING), recovers every tenant, opens the WAL, then takes periodic
/// snapshots; at graceful shutdown, after the server has drained, it takes a last snapshot round
/// and closes the WAL.
public final class PersistenceService: Service {
    let configuration: PersistenceConfiguration
    let context: ServerContext
    let log: DeferredLog
    let commits: DeferredCommitTracker
    let logger: Logger
    private let controllerBox = LockedBox<PersistenceController?>(nil)
    /// Tenants being restored (one restore per tenant at a time).
    let restoring = LockedBox<Set<String>>([])
    /// This node's part in replication, if any: told when the WAL is open.
    let replication: ReplicationNode?

    public init(configuration: PersistenceConfiguration, context: ServerContext, log: DeferredLog, commits: DeferredCommitTracker,
                replication: ReplicationNode? = nil) {
        self.replication = replication
        var configuration = configuration
        // Every connection calls `writeQueued()` (the WAL's `writeNow`) after a batch with writes.
        configuration.appendersWriteNow = true
        self.configuration = configuration
        self.context = context
        self.log = log
        self.commits = commits
        self.logger = context.logger
    }

    public var controller: PersistenceController? { controllerBox.value }

    public func run() async throws {
        let runtime = context.runtime
        let started = ContinuousClock.now
        let configuration = self.configuration
        let limits = context.environment.limits
        let clock = context.clock
        let logger = self.logger
        if let replication {
            runtime.recoveryProgress = "comparing the log with the primary's"
            try await replication.prepareToFollow(DataDirectory(configuration.dataDirectory))
        }
        let (controller, outcome) = try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                do {
                    let opened = try PersistenceController.open(
                        configuration: configuration, limits: limits, clock: clock, logger: logger,
                        progress: { message in
                            runtime.recoveryProgress = message
                            logger.info("recovery", metadata: ["progress": "\(message)"])
                        })
                    continuation.resume(returning: opened)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
        for (tenant, state) in outcome.states {
            let actor = context.registry.tenant(tenant)
            await actor.recovered(state, lsn: outcome.lastLSN[tenant] ?? 0)
        }
        log.set(controller.wal)
        context.feed.attach(wal: controller.wal, walDirectory: controller.directory.walDirectory, fileSystem: configuration.fileSystem)
        let watch = context.sequenceWatch
        commits.set(WALCommitTracker(wal: controller.wal, registry: context.registry, placement: context.placement, loopWakes: context.loopWakes, committed: { watch.committed() }))
        replication?.attach(wal: controller.wal, registry: context.registry)
        controller.start()
        controllerBox.value = controller
        context.admin.set(self)
        let report = outcome.report
        let records = outcome.states.values.reduce(0) { $0 + $1.store.liveCount + $1.store.deletedCount }
        runtime.recoveryProgress = "recovered \(outcome.states.count) tenants, \(records) records in \(Recovery.seconds(ContinuousClock.now - started)) s"
        logger.info("recovered", metadata: [
            "tenants": "\(outcome.states.count)", "records": "\(records)", "wal_records_applied": "\(report.walRecordsApplied)",
            "snapshot_seconds": "\(report.snapshotSeconds)", "wal_seconds": "\(report.walSeconds)",
            "seconds": "\(Recovery.seconds(ContinuousClock.now - started))",
            "torn_tail": "\(report.tornTail ?? "none")",
        ])
        context.metrics.recordTenants(outcome.states.count, records: records)
        MemoryTrimmer.trim()  // recovery's temporary buffers
        runtime.finishLoading()

        let registry = context.registry
        let indexBuilds = context.indexBuilds
        await cancelWhenGracefulShutdown {
            await controller.runScheduler(indexBuilds: indexBuilds) { registry.all }
        }
        // A restore still running (its connection may have been closed by the drain) finishes before the
        // WAL closes and the LOCK is released.
        let deadline = ContinuousClock.now + .seconds(60)
        while !restoring.value.isEmpty && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        // A node stopping to start again as a replica (fenced, or its log must be cut or copied) takes
        // no last round: its writes since it was replaced will never be acknowledged, and its data is
        // about to be cut or replaced.
        if let reason = replication?.restartReason {
            logger.notice("no shutdown snapshot round: the node starts again", metadata: ["reason": "\(reason)"])
            controller.close()
            return
        }
        // The server has drained (it shuts down first): take a last snapshot round and close the WAL.
        // It waits a few seconds at most for its writes' acknowledgements: with the replicas gone they
        // may never come, and a tenant left out is replayed from the WAL at the next start.
        let roundStart = ContinuousClock.now
        let results = await controller.snapshot(registry.all, resolveTimeout: .seconds(5))
        let written = results.filter { !$0.skipped && $0.error == nil }
        logger.notice("shutdown snapshot round", metadata: [
            "tenants_written": "\(written.count)", "records": "\(written.reduce(0) { $0 + $1.records })",
            "bytes": "\(written.reduce(0) { $0 + $1.bytes })", "seconds": "\(Recovery.seconds(ContinuousClock.now - roundStart))",
            "failed": "\(results.filter { $0.error != nil }.count)",
        ])
        controller.close()
    }

    /// An on-demand snapshot round (admin opcode, CLI).
    public func snapshot(_ tenants: [TenantActor], force: Bool) async throws(LearnStoreError) -> [PersistenceController.SnapshotResult] {
        guard let controller else { throw LearnStoreError(.loading, "the server is recovering its data") }
        return await controller.snapshot(tenants, force: force)
    }
}

/// Blocking work (file reads and writes, waiting for the WAL) runs on a dispatch queue, never on the
/// cooperative pool, an event loop or a tenant's actor.
func offload<T: Sendable>(_ work: @escaping @Sendable () throws(LearnStoreError) -> T) async throws(LearnStoreError) -> T {
    let result: Result<T, LearnStoreError> = await withCheckedContinuation { continuation in
        DispatchQueue.global().async {
            do throws(LearnStoreError) {
                continuation.resume(returning: .success(try work()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
    }
    return try result.get()
}

/// A value behind a lock, for state set once by one task and read by others.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NIOLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
    func update<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&stored) } }
}
