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
                ("lease", .string(String(node.lease))), ("machine", node.entry?.machine.map { .string($0) } ?? .null),
            ])
        }
        // Registered nodes the placement neither lists nor removed: spares under a replication factor
        // (or new nodes the controller has not added yet).
        let spares = self.nodes.map(\.id).filter { id in self.placement.map { $0.members[id] == nil && !$0.removed.contains(id) } ?? false }
        let shared = self.placement.map { ControllerRules.sharedMachines($0, registered: registered) } ?? [:]
        return .object([
            ("revision", .number(String(revision))), ("controller", controller.map { .string($0) } ?? .null), ("placement", placement),
            ("nodes", .array(nodes)), ("spares", .array(spares.sorted().map { .string($0) })),
            ("members_sharing_a_machine", .object(shared.sorted { $0.key < $1.key }.map { ($0.key, .array($0.value.sorted().map { .string($0) })) })),
        ])
    }

    /// The registered nodes whose keys decode.
    public var registered: [String: ClusterNodeEntry] {
        Dictionary(nodes.compactMap { node in node.entry.map { (node.id, $0) } }, uniquingKeysWith: { $1 })
    }

    /// Per machine named by the groups' registered nodes (`serve --machine`): the groups whose primary
    /// runs there and the nodes (`group/node`) it runs, for `cluster status --partition-map`. A
    /// machine running several primaries stops all of those groups' writes when it is lost.
    public static func machines(of views: [(group: String, view: ClusterView)]) -> JSONValue {
        var primaries: [String: [String]] = [:]
        var nodes: [String: [String]] = [:]
        for (group, view) in views {
            for (id, entry) in view.registered {
                guard let machine = entry.machine else { continue }
                nodes[machine, default: []].append(group + "/" + id)
                if view.placement?.primary == id { primaries[machine, default: []].append(group) }
            }
        }
        return .object(nodes.keys.sorted().map { machine in
            (machine, .object([
                ("primaries", .array((primaries[machine] ?? []).sorted().map { .string($0) })),
                ("nodes", .array(nodes[machine, default: []].sorted().map { .string($0) })),
            ]))
        })
    }
}
