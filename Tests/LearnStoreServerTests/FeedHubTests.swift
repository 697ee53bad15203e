import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreTestSupport
import Testing
@testable import LearnStoreServer

/// The hub keeps a tenant's recent changes while a subscription holds them or is being opened, and
/// drops them once neither is left.
@Suite struct FeedHubTests {
    static let caller = CallerIdentity(tenantID: "t", personID: UUID16(high: 1, low: 1), scopes: [.recordsRead])

    static func source(_ hub: FeedHub, _ recent: RecentChanges, wal: WriteAheadLog, directory: String) -> FeedSource {
        FeedSource(tenantID: "t", wal: wal, walDirectory: directory, fileSystem: PosixFileSystem(), start: WALTailReader.Position(segmentFirstLSN: 1),
                   translator: FeedTranslator(tenantID: "t", caller: caller, after: 0), recent: recent, statistics: hub.statistics)
    }

    /// A hub over a real, empty WAL in a scratch directory.
    static func withHub(memoryRecords: Int = RecentChanges.defaultMaximumRecords, _ body: (FeedHub, WriteAheadLog, String) throws -> Void) throws {
        let directory = TemporaryDirectory()
        let wal = try WriteAheadLog(configuration: WALConfiguration(directory: directory.path), resume: nil)
        defer { wal.close() }
        try body(FeedHub(maximum: 10, maximumPerTenant: 10, memoryRecordsPerTenant: memoryRecords), wal, directory.path)
    }

    static func entry(_ sequence: UInt64) -> LogEntry { LogEntry(tenantID: "t", sequence: sequence, timestamp: Timestamp(milliseconds: 1), mutations: []) }

    @Test func theLastSubscriptionLeavingDoesNotCloseWhatAnOpeningOneHolds() throws {
        try Self.withHub { hub, wal, directory in
            let first = hub.recentChanges(for: "t", wal: wal)
            let leaving = Self.source(hub, first, wal: wal, directory: directory)
            try hub.register(leaving)
            hub.openingEnded(first, failed: false)

            let opening = hub.recentChanges(for: "t", wal: wal)
            #expect(opening === first, "one buffer per tenant")
            hub.unregister(leaving)
            #expect(opening.appended(Self.entry(1), lsn: 1), "a subscription being opened still holds it")
            let arriving = Self.source(hub, opening, wal: wal, directory: directory)
            try hub.register(arriving)
            hub.openingEnded(opening, failed: false)
            #expect(opening.appended(Self.entry(2), lsn: 2))

            hub.unregister(arriving)
            #expect(!opening.appended(Self.entry(3), lsn: 3), "no subscription left: dropped")
            #expect(hub.recentChanges(for: "t", wal: wal) !== opening, "the next subscription starts a new one")
        }
    }

    @Test func aFailedOpeningDropsWhatNobodyElseHolds() throws {
        try Self.withHub { hub, wal, _ in
            let a = hub.recentChanges(for: "t", wal: wal)
            let b = hub.recentChanges(for: "t", wal: wal)
            hub.openingEnded(a, failed: true)
            #expect(b.appended(Self.entry(1), lsn: 1), "another opening still holds it")
            hub.openingEnded(b, failed: true)
            #expect(!b.appended(Self.entry(2), lsn: 2))
        }
    }

    @Test func withNoMemoryConfiguredSubscriptionsReadTheFiles() throws {
        try Self.withHub(memoryRecords: 0) { hub, wal, _ in
            let recent = hub.recentChanges(for: "t", wal: wal)
            #expect(!recent.appended(Self.entry(1), lsn: 1))
            #expect(!recent.join(ObjectIdentifier(hub), throughSequence: 0, passedLSN: 0))
            hub.openingEnded(recent, failed: false)
        }
    }
}
