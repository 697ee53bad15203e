import LearnStoreEngine

extension ServerMetrics {
    /// Brings the gauges of the server's current state up to date: tenants, records, loading,
    /// change-feed subscriptions and resident memory. Called before each scrape, so they are never stale and nothing runs between
    /// scrapes; it takes each tenant's lock just long enough to read two counts.
    public func sampleState(registry: TenantRegistry, runtime: ServerRuntimeState, feed: FeedHub) {
        let tenants = registry.all
        var records = 0
        for tenant in tenants {
            records += tenant.withExclusiveAccess { $0.state.store.liveCount + $0.state.store.deletedCount }
        }
        recordTenants(tenants.count, records: records)
        loadingGauge.record(runtime.isLoading ? 1 : 0)
        feedSubscriptionsGauge.record(feed.subscriptions)
        feedMemoryRecordsGauge.record(feed.recentRecordsHeld)
        feedChangesFromMemoryGauge.record(feed.statistics.changesFromMemory)
        feedFellBehindMemoryGauge.record(feed.statistics.fellBehindMemory)
        if let bytes = ResidentMemory.current() { residentMemoryGauge.record(bytes) }
    }
}
