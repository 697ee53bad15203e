import LearnStoreModel

/// The part of etcd the control plane uses: ``EtcdClient`` on a real cluster, ``SimulatedEtcd`` in
/// the control plane's deterministic simulation.
protocol ControlPlaneStore: Sendable {
    func grantLease(ttlSeconds: Int) async throws(LearnStoreError) -> (id: Int64, ttlSeconds: Int)
    /// The lease's remaining TTL in seconds; 0 when etcd no longer holds it.
    func keepAlive(lease: Int64) async throws(LearnStoreError) -> Int
    func revoke(lease: Int64) async throws(LearnStoreError)
    func put(_ key: String, _ value: [UInt8], lease: Int64) async throws(LearnStoreError)
    func get(_ key: String) async throws(LearnStoreError) -> EtcdClient.KeyValue?
    func range(prefix: String) async throws(LearnStoreError) -> (revision: Int64, kvs: [EtcdClient.KeyValue])
    /// Applies `puts` and `deletes` atomically when every comparison holds; false (nothing applied) when one does not.
    func transaction(
        if compares: [EtcdClient.Compare], put puts: [(key: String, value: [UInt8], lease: Int64)], delete deletes: [String]
    ) async throws(LearnStoreError) -> Bool
    /// Every change of the keys under `prefix` after revision `from - 1`; each answer rings `wakeup`.
    func watchPrefix(_ prefix: String, from revision: Int64, wakeup: Wakeup) async throws(LearnStoreError) -> any ControlPlaneWatch
}

extension ControlPlaneStore {
    func transaction(if compares: [EtcdClient.Compare], put puts: [(key: String, value: [UInt8], lease: Int64)]) async throws(LearnStoreError) -> Bool {
        try await transaction(if: compares, put: puts, delete: [])
    }
}

protocol ControlPlaneWatch: Sendable {
    /// The answers received since the last call, and why the watch ended (nil while it runs).
    func take() -> (responses: [EtcdWatchResponse], ended: String?)
    func close()
}

extension EtcdClient: ControlPlaneStore {
    func watchPrefix(_ prefix: String, from revision: Int64, wakeup: Wakeup) async throws(LearnStoreError) -> any ControlPlaneWatch {
        try await watch(prefix: prefix, from: revision, wakeup: wakeup)
    }
}

extension EtcdWatch: ControlPlaneWatch {}

/// What the control plane reads from and does to the node it runs on: ``ReplicationNode``, or a
/// simulated node.
protocol ClusterNodeControl: Sendable {
    var nodeID: String { get }
    var role: NodeRole { get }
    var epoch: UInt64 { get }
    /// In-sync replicas a write needs (`m`): a promotion needs all but `m` nodes to promise.
    var minimumInSync: Int { get }
    /// Stops acknowledging writes: a newer primary may exist.
    func fence(reason: String)
    /// Stops the node so that it starts again (an old primary that was replaced starts as a replica).
    func requestRestart(_ reason: String)
    /// The replication addresses of the other members, which a replica tries in turn for the primary.
    func setFollowAddresses(_ addresses: [String])
    /// The members etcd's placement lists, less those leaving: a primary counts only them for
    /// acknowledgements. `observedEpoch` is the node's epoch before the placement was read: a primary
    /// ignores a list read before its epoch began.
    func setMembers(_ nodeIDs: Set<String>, observedEpoch: UInt64)
    /// A primary (or fenced one) that has no members read during its epoch: a promotion or a start
    /// as primary leaves it counting no replica until its agent reads the placement from etcd.
    var needsMembers: Bool { get }
}

extension ReplicationNode: ClusterNodeControl {
    var nodeID: String { configuration.nodeID }
    var minimumInSync: Int { configuration.replicaSet.minimumInSync }
}
