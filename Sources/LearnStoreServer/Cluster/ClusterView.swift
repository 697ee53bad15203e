import LearnStoreModel
import NIOCore

/// The control plane as etcd holds it, for `learnstore cluster status`.
public struct ClusterView: Sendable {
    public var revision: Int64
    public var controller: String?
    public var placement: ClusterPlacement?
    public var nodes: [(id: String, entry: ClusterNodeEntry?, lease: Int64)]

    public static func read(_ configuration: ClusterConfiguration, group: any EventLoopGroup) async throws(LearnStoreError) -> ClusterView {
        let etcd = try EtcdClient(endpoints: configuration.endpoints, group: group, timeout: .seconds(2))
        let (revision, keys) = try await etcd.range(prefix: configuration.prefix)
        let controller = keys.first { $0.key == configuration.controllerKey }.map { String(decoding: $0.value, as: UTF8.self) }
        let placement = try keys.first { $0.key == configuration.placementKey }.map { kv throws(LearnStoreError) in try ClusterPlacement.decode(kv.value) }
        let nodes = keys.filter { $0.key.hasPrefix(configuration.nodesPrefix) }.map { kv in
            (id: String(kv.key.dropFirst(configuration.nodesPrefix.count)), entry: ClusterNodeEntry.decode(kv.value), lease: kv.lease)
        }
        return ClusterView(revision: revision, controller: controller, placement: placement, nodes: nodes)
    }

    public var json: JSONValue {
        let placement: JSONValue = self.placement.map { placement in
            .object([
                ("epoch", .number(String(placement.epoch))), ("primary", .string(placement.primary)),
                ("members", .object(placement.members.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
                ("leaving", .array(placement.leaving.sorted().map { .string($0) })),
                ("replacing", .array(placement.replacing.sorted().map { .string($0) })), ("removed", .array(placement.removed.sorted().map { .string($0) })),
            ])
        } ?? .null
        let nodes: [JSONValue] = self.nodes.map { node in
            .object([
                ("node_id", .string(node.id)), ("replication", node.entry.map { .string($0.replication) } ?? .null),
                ("role", node.entry.map { .string($0.role.name) } ?? .null), ("epoch", node.entry.map { .number(String($0.epoch)) } ?? .null),
                ("lease", .string(String(node.lease))),
            ])
        }
        // Registered nodes the placement neither lists nor removed: spares under a replication factor
        // (or new nodes the controller has not added yet).
        let spares = self.nodes.map(\.id).filter { id in self.placement.map { $0.members[id] == nil && !$0.removed.contains(id) } ?? false }
        return .object([
            ("revision", .number(String(revision))), ("controller", controller.map { .string($0) } ?? .null), ("placement", placement),
            ("nodes", .array(nodes)), ("spares", .array(spares.sorted().map { .string($0) })),
        ])
    }
}
