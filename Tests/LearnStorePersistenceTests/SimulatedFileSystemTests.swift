import LearnStoreModel
import Testing
@testable import LearnStorePersistence

/// What survives a simulated machine crash: synced bytes, names synced into their directory, and only
/// directories whose own entry was synced into their parent (with everything under them).
@Suite struct SimulatedFileSystemTests {
    static func writeSynced(_ fs: SimulatedFileSystem, _ path: String, directory: String) throws {
        let file = try fs.openForWriting(path, create: true)
        try file.write([1, 2, 3], at: 0)
        try file.sync(dataOnly: false)
        file.close()
        try fs.syncDirectory(directory)
    }

    @Test func aNewDirectoryWhoseParentWasNeverSyncedIsLostWithItsFiles() throws {
        let fs = SimulatedFileSystem(random: SplitMix64(seed: 1))
        try fs.createDirectory("/data/tenants/t1")
        try Self.writeSynced(fs, "/data/tenants/t1/snapshot", directory: "/data/tenants/t1")
        fs.machineCrash()
        #expect(!fs.exists("/data/tenants/t1/snapshot") && !fs.exists("/data/tenants/t1") && !fs.exists("/data"))
    }

    @Test func aDurablyCreatedDirectoryKeepsItsSyncedFiles() throws {
        let fs = SimulatedFileSystem(random: SplitMix64(seed: 1))
        try fs.createDurableDirectory("/data/tenants/t1")
        try Self.writeSynced(fs, "/data/tenants/t1/snapshot", directory: "/data/tenants/t1")
        try fs.createDirectory("/data/tenants/t2")
        try Self.writeSynced(fs, "/data/tenants/t2/snapshot", directory: "/data/tenants/t2")
        fs.machineCrash()
        #expect(fs.exists("/data/tenants/t1/snapshot"))
        #expect(!fs.exists("/data/tenants/t2"), "t2's entry in tenants/ was never synced")
        #expect(try fs.list("/data/tenants") == ["t1"])
    }

    @Test func aRemovedDirectoryComesBackUnlessItsParentIsSynced() throws {
        let fs = SimulatedFileSystem(random: SplitMix64(seed: 1))
        try fs.createDurableDirectory("/data/staging")
        try fs.removeDirectory("/data/staging")
        fs.machineCrash()
        #expect(fs.exists("/data/staging"))
        try fs.removeDirectory("/data/staging")
        try fs.syncDirectory("/data")
        fs.machineCrash()
        #expect(!fs.exists("/data/staging"))
    }

    @Test func aDirectoryWhoseParentSyncFailedIsRemovedSoTheNextCallRetries() throws {
        let fs = SimulatedFileSystem(random: SplitMix64(seed: 1))
        try fs.createDurableDirectory("/data/tenants")
        fs.rates.syncError = 1_000_000
        #expect(throws: StorageError.self) { try fs.createDurableDirectory("/data/tenants/t1") }
        #expect(!fs.exists("/data/tenants/t1"))
        fs.rates.syncError = 0
        try fs.createDurableDirectory("/data/tenants/t1")
        fs.machineCrash()
        #expect(fs.exists("/data/tenants/t1"))
    }
}
