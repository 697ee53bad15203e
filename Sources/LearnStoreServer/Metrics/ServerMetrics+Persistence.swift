import LearnStorePersistence
import Metrics

extension ServerMetrics: PersistenceObserver {
    public func walWritten(records: Int, bytes: Int, duration: Duration) {
        walWriteTimer.recordNanoseconds(WeightedDurationHistogram.nanoseconds(duration))
        walWriteRecords.record(records)
        walWriteBytes.record(bytes)
    }

    public func walSynced(duration: Duration) {
        walSyncTimer.recordNanoseconds(WeightedDurationHistogram.nanoseconds(duration))
    }

    /// The size goes to a gauge per tenant, the duration to one histogram for all: a tenant label on
    /// a histogram would multiply its series by the number of tenants.
    public func snapshotWritten(tenantID: String, bytes: Int, duration: Duration) {
        snapshotTimer.recordNanoseconds(WeightedDurationHistogram.nanoseconds(duration))
        let gauge = snapshotBytes.withLock { gauges in
            if let existing = gauges[tenantID] { return existing }
            let created = Gauge(label: Name.snapshotBytes, dimensions: [("tenant", tenantID)], factory: factory)
            gauges[tenantID] = created
            return created
        }
        gauge.record(bytes)
    }

    public func snapshotFailed(tenantID: String) { snapshotFailures.increment() }

    public func recoveryProgressed(_ progress: RecoveryProgress) {
        recoveryTenantsLoaded.record(progress.tenantsLoaded)
        recoveryTenants.record(progress.tenants)
        recoverySegmentsReplayed.record(progress.walSegmentsReplayed)
        recoverySegments.record(progress.walSegments)
    }
}
