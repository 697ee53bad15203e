/// What applying one event or record did.
public enum IngestResult: Hashable, Sendable {
    /// It is now the stored version (possibly a tombstone).
    case applied
    /// The stored version is this very version (same timestamps and content): nothing changed.
    case duplicate
    /// The stored version is newer: nothing changed.
    case stale
}
