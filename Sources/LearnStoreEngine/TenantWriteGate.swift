import LearnStoreModel

/// Decides whether a tenant may take a client write now: a node refuses the writes of a partition
/// it is handing to another group (docs/CLUSTER.md, "Moving a partition"). The tenant asks under its
/// own isolation, right before logging, so a write either is logged before the gate closes or is
/// refused after: one hop onto the tenant after closing it finds every earlier write logged.
public protocol TenantWriteGate: Sendable {
    /// The error a client write of the tenant gets now; nil to let it through.
    func refusal(tenantID: String) -> LearnStoreError?
}
