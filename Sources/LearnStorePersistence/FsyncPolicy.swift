/// When a write counts as committed (docs/OPERATIONS.md, "Durability").
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// After `fdatasync` of the WAL (group commit: one sync for all writes queued meanwhile). A crash of
    /// the process or of the machine loses nothing acknowledged. The default.
    case always
    /// After `write` to the WAL; `fdatasync` once a second. A killed process loses nothing (the data is
    /// in the OS page cache); a power failure or kernel crash may lose the last second.
    case everysec
    /// After `write`; never synced except at segment rotation and shutdown. Like `everysec`, but the
    /// loss window on power failure is whatever the OS had not yet written back.
    case off
}
