/// A node's role as the replication port reports it.
public enum NodeRole: UInt8, Sendable, Hashable {
    /// Takes client writes and ships its log to replicas.
    case primary = 1
    /// Follows a primary; serves reads.
    case replica = 2
    /// Was a primary and learned of a newer epoch: takes no writes.
    case fenced = 3

    public init?(name: String) {
        switch name {
        case "primary": self = .primary
        case "replica": self = .replica
        case "fenced": self = .fenced
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .primary: "primary"
        case .replica: "replica"
        case .fenced: "fenced"
        }
    }
}
