import LearnStoreModel
import NIOCore

/// `handover` (under the group's prefix): the operator's request that the controller move the primary
/// to the member `to` without a failure (`learnstore cluster handover`, docs/CLUSTER.md "Handing
/// over"), for the placement's `epoch`. The controller deletes it when done, or records why it could
/// not (`error`) and leaves it for the operator to read.
public struct HandoverRecord: Sendable, Equatable {
    public var to: String
    public var epoch: UInt64
    public var error: String?

    public init(to: String, epoch: UInt64, error: String? = nil) {
        self.to = to
        self.epoch = epoch
        self.error = error
    }

    public var encoded: [UInt8] {
        var fields: [(String, JSONValue)] = [("to", .string(to)), ("epoch", .number(String(epoch)))]
        if let error { fields.append(("error", .string(error))) }
        return Array(JSONValue.object(fields).serialized.utf8)
    }

    public static func decode(_ bytes: [UInt8]) -> HandoverRecord? {
        guard bytes.count <= 64 << 10, let value = try? JSONValue.parse(bytes), let to = value["to"]?.stringValue, NodeCredential.isValidNodeID(to),
            let epoch = value["epoch"]?.int64Value, epoch >= 0
        else { return nil }
        let error = value["error"]?.stringValue.map { String($0.prefix(1024)) }
        return HandoverRecord(to: to, epoch: UInt64(epoch), error: error)
    }

    /// Why the placement cannot take this handover, or nil: it must be for the placement's epoch and name
    /// a registered member counted as in sync that is not the primary.
    public func refusal(_ placement: ClusterPlacement, registered: Set<String>) -> String? {
        if epoch != placement.epoch { return "the request is for epoch \(epoch); the placement is at epoch \(placement.epoch) (a failover came first)" }
        if to == placement.primary { return "\(to) is already the primary" }
        if !placement.acknowledgingMembers.contains(to) { return "\(to) is not a member counted as in sync (a spare, leaving, replaced, or unknown)" }
        if !registered.contains(to) { return "\(to) is not registered in etcd (its lease lapsed, or it stopped)" }
        return nil
    }
}

extension ClusterConfiguration {
    var handoverKey: String { prefix + "handover" }
}

/// `learnstore cluster handover`: writes the request for the controller and waits for its outcome.
public enum ClusterHandover {
    /// Asks the controller to make `target` the primary and waits until the placement names it
    /// (returned), the controller gives the request up (its reason thrown, the request removed), or
    /// `timeout` passes (the request stays; the controller may still carry it out or give it up).
    public static func request(
        _ target: String, configuration: ClusterConfiguration, group: any EventLoopGroup, timeout: Duration
    ) async throws(LearnStoreError) -> ClusterPlacement {
        let etcd = try EtcdClient(endpoints: configuration.endpoints, group: group, timeout: .seconds(2))
        let deadline = ContinuousClock.now + timeout
        var asked: HandoverRecord?
        while ContinuousClock.now < deadline {
            let (_, keys) = try await etcd.range(prefix: configuration.prefix)
            guard let placementKV = keys.first(where: { $0.key == configuration.placementKey }) else {
                throw LearnStoreError(.notFound, "etcd holds no placement for cluster '\(configuration.name)'")
            }
            let placement = try ClusterPlacement.decode(placementKV.value)
            let stored = keys.first { $0.key == configuration.handoverKey }
            if let asked {
                if placement.primary == target && placement.epoch > asked.epoch { return placement }
                if let stored, let record = HandoverRecord.decode(stored.value), record.to == asked.to, record.epoch == asked.epoch, let reason = record.error {
                    _ = try await etcd.transaction(if: [EtcdClient.Compare.modRevision(configuration.handoverKey, stored.modRevision)], put: [], delete: [configuration.handoverKey])
                    throw LearnStoreError(.conflict, "the controller gave the handover up: \(reason)")
                }
                if stored == nil || placement.epoch > asked.epoch {
                    throw LearnStoreError(.conflict, "the request was replaced or dropped (placement at epoch \(placement.epoch), primary \(placement.primary))")
                }
            } else {
                let registered = Set(keys.filter { $0.key.hasPrefix(configuration.nodesPrefix) }.map { String($0.key.dropFirst(configuration.nodesPrefix.count)) })
                let record = HandoverRecord(to: target, epoch: placement.epoch)
                if let refusal = record.refusal(placement, registered: registered) { throw LearnStoreError(.validation, refusal) }
                if try await etcd.transaction(if: [EtcdClient.Compare.modRevision(configuration.placementKey, placementKV.modRevision)],
                                              put: [(configuration.handoverKey, record.encoded, 0)]) {
                    asked = record
                }
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        throw LearnStoreError(.timeout, asked == nil
            ? "the placement kept changing; no handover was asked for"
            : "no outcome within \(timeout); the request stays in etcd (the controller may still carry it out or give it up)")
    }
}
