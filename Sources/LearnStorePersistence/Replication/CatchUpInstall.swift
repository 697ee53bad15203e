import LearnStoreModel

/// Makes a complete catch-up copy the node's data, before recovery reads it; every step can be
/// repeated after a crash. A staged copy without `complete` was cut short: it is removed and the
/// node's data stays as it was.
///
/// Installing: (1) every WAL and snapshot file the manifest does not name is removed (what the node
/// held before: a copy replaces it whole; a file the manifest names may already be the moved copy);
/// (2) each staged file still in the staging directory is renamed to its place; (3) the directories
/// are synced; (4) the primary's epoch history replaces the node's, keeping the node's promise;
/// (5) `complete` is removed, then the rest of the staging.
public enum CatchUpInstall {
    public struct Installed: Sendable {
        public var throughLSN: UInt64
        public var files: Int
        public var history: EpochHistory
    }

    /// Installs a complete copy, or discards an incomplete one. Returns what was installed.
    public static func resume(_ data: DataDirectory, historyDirectory: String, _ fs: any FileSystem) throws(LearnStoreError) -> Installed? {
        let staging = CatchUpStaging(data)
        guard fs.exists(staging.directory) else { return nil }
        guard fs.exists(staging.completePath) else {
            do throws(StorageError) { try discard(staging, fs) } catch { throw error.learnStoreError }
            return nil
        }
        do {
            let (through, paths) = try CatchUpStaging.decodeManifest(try fs.readWholeFile(staging.manifestPath))
            let primary = try EpochHistory.decode(try fs.readWholeFile(staging.epochsPath))
            try removeFilesNotIn(Set(paths), data, fs)
            var directories: Set<String> = [data.walDirectory, data.tenantsDirectory]
            for (index, path) in paths.enumerated() where fs.exists(staging.stagedPath(index)) {
                let target = data.path + "/" + path
                let parent = String(target[..<target.lastIndex(of: "/")!])
                try fs.createDurableDirectory(parent)
                try fs.rename(staging.stagedPath(index), to: target)
                directories.insert(parent)
            }
            try fs.createDurableDirectory(data.walDirectory)
            try fs.createDurableDirectory(data.tenantsDirectory)
            for directory in directories.sorted(by: { $0.count > $1.count }) { try fs.syncDirectory(directory) }
            let own = try EpochHistory.read(directory: historyDirectory, fs)
            var history = try EpochHistory(starts: primary.starts, promised: primary.promised)
            history.keepPromise(of: own)
            try fs.createDurableDirectory(historyDirectory)
            try history.write(directory: historyDirectory, fs)
            try fs.remove(staging.completePath)
            try fs.syncDirectory(staging.directory)
            try discard(staging, fs)
            return Installed(throughLSN: through, files: paths.count, history: history)
        } catch let error as LearnStoreError {
            throw error
        } catch let error as StorageError {
            throw error.learnStoreError
        } catch {
            throw LearnStoreError(.storageUnavailable, "installing the catch-up copy: \(error)")
        }
    }

    static func discard(_ staging: CatchUpStaging, _ fs: any FileSystem) throws(StorageError) {
        guard fs.exists(staging.directory) else { return }
        for name in try fs.list(staging.directory) { try fs.remove(staging.directory + "/" + name) }
        try fs.removeDirectory(staging.directory)
    }

    private static func removeFilesNotIn(_ keep: Set<String>, _ data: DataDirectory, _ fs: any FileSystem) throws(StorageError) {
        if fs.exists(data.walDirectory) {
            for name in try fs.list(data.walDirectory) where !keep.contains("wal/" + name) {
                try fs.remove(data.walDirectory + "/" + name)
            }
            try fs.syncDirectory(data.walDirectory)
        }
        guard fs.exists(data.tenantsDirectory) else { return }
        for tenant in try fs.list(data.tenantsDirectory) {
            let directory = data.tenantDirectory(tenant)
            var kept = 0
            for name in try fs.list(directory) {
                if keep.contains("tenants/\(tenant)/\(name)") { kept += 1 } else { try fs.remove(directory + "/" + name) }
            }
            if kept == 0 { try fs.removeDirectory(directory) } else { try fs.syncDirectory(directory) }
        }
        try fs.syncDirectory(data.tenantsDirectory)
    }
}
