import LearnStoreModel

/// The members a primary may count as in sync (the placement's members less those leaving), as the
/// node's control-plane agent read them from etcd, and the node's epoch when it did. A list read
/// before the node's epoch began may name a node removed since: so a promotion empties the list, and
/// a primary takes only a list read during its own epoch, counting no replica until then.
struct AcknowledgingMembers: Sendable, Equatable {
    /// nil without a control plane: every replica may count.
    private(set) var nodeIDs: Set<String>?
    private(set) var readInEpoch: UInt64?

    init(controlPlane: Bool) { nodeIDs = controlPlane ? [] : nil }

    /// Whether a node at `epoch` in `role` counts no replica until its agent reads the members again.
    func isStale(role: NodeRole, epoch: UInt64) -> Bool { nodeIDs != nil && role != .replica && readInEpoch != epoch }

    /// Takes a list read when the node was at `observedEpoch`, unless the node is a primary (or a
    /// fenced one) of another epoch by now. True when the list changed.
    mutating func update(_ members: Set<String>, observedEpoch: UInt64, role: NodeRole, epoch: UInt64) -> Bool {
        guard nodeIDs != nil, role == .replica || observedEpoch == epoch else { return false }
        readInEpoch = observedEpoch
        guard nodeIDs != members else { return false }
        nodeIDs = members
        return true
    }

    /// The node became the primary of a new epoch.
    mutating func promoted() {
        guard nodeIDs != nil else { return }
        nodeIDs = []
        readInEpoch = nil
    }
}
