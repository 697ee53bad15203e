import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// The operator's promotion (`learnstore cluster promote`, docs/REPLICATION.md): it reaches the
/// cluster's nodes, checks that enough answer, has a quorum promise an epoch above every one they
/// know, and promotes the most up-to-date replica.
public enum ClusterPromotion {
    public struct NodeStatus: Sendable {
        public var address: String
        public var status: JSONValue?
        public var error: String?

        func number(_ name: String) -> UInt64 { UInt64(max(0, status?[name]?.int64Value ?? 0)) }
        var role: String? { status?["role"]?.stringValue }
        /// Raft's comparison of logs: the epoch the log is in (``EpochHistory/logEpoch(through:)``), then the last LSN.
        var upToDate: (UInt64, UInt64) { (number("last_epoch"), number("durable_lsn")) }
    }

    public struct Outcome: Sendable {
        public var address: String
        public var nodeID: String
        public var epoch: UInt64
        public var firstLSN: UInt64
        public var promisedBy: Int
    }

    /// Each node's STATUS document, or why it did not answer.
    public static func statuses(_ addresses: [String], credential: NodeCredential, group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)) async -> [NodeStatus] {
        await statuses(addresses, over: NodeTransport(credential: credential, group: group), timeout: timeout)
    }

    static func statuses(_ addresses: [String], over transport: any PromotionTransport, timeout: TimeAmount) async -> [NodeStatus] {
        var results: [NodeStatus] = []
        for address in addresses { results.append(await transport.status(address, timeout: timeout)) }
        return results
    }

    /// Promotes a replica of the cluster whose nodes are `addresses` (all of them). `node` asks for
    /// one replica; `force` skips the checks that keep a promotion from losing acknowledged writes.
    public static func promote(
        _ addresses: [String], credential: NodeCredential, minimumInSync: Int, node: String? = nil, force: Bool = false,
        group: any EventLoopGroup, timeout: TimeAmount = .seconds(10)
    ) async throws(LearnStoreError) -> Outcome {
        try await promote(addresses, over: NodeTransport(credential: credential, group: group), minimumInSync: minimumInSync, node: node, force: force, timeout: timeout)
    }

    /// `eligible`: the nodes that may become the primary (the controller's: those registered in etcd,
    /// since one whose lease lapsed would fence itself at once); one of them is promoted only if it is
    /// as up to date as every node that promised, else nothing is. `preferred`: among the nodes as up
    /// to date as the best, one of these is chosen (the controller's: members not on their way out),
    /// and among those one with fewer `otherPrimaries` (by address: other groups' primaries on its
    /// machine) if there is one. `minimumEpoch`: the new epoch is at least this (the controller's:
    /// above the placement's, which the reachable nodes may never have heard of, as when its primary
    /// stopped before any replica followed it).
    static func promote(
        _ addresses: [String], over transport: any PromotionTransport, minimumInSync: Int, node: String? = nil, force: Bool = false,
        eligible: Set<String>? = nil, preferred: Set<String>? = nil, otherPrimaries: [String: Int] = [:], minimumEpoch: UInt64 = 0, timeout: TimeAmount
    ) async throws(LearnStoreError) -> Outcome {
        func refuse(_ message: String) -> LearnStoreError { LearnStoreError(.validation, message) }
        let statuses = await self.statuses(addresses, over: transport, timeout: timeout)
        let total = statuses.count
        guard minimumInSync >= 0, total > 2 * minimumInSync || force else {
            throw refuse("\(total) nodes cannot promote safely with a minimum of \(minimumInSync) in-sync replicas: more than \(2 * minimumInSync) are needed")
        }
        let reachable = statuses.filter { $0.status != nil }
        guard reachable.count >= total - minimumInSync || force else {
            let missing = statuses.filter { $0.status == nil }.map { "\($0.address): \($0.error ?? "no answer")" }
            throw refuse("only \(reachable.count) of \(total) nodes answer (\(missing.joined(separator: "; "))); at least \(total - minimumInSync) must")
        }
        let primaries = reachable.filter { $0.role == "primary" }
        guard primaries.isEmpty || force else {
            throw refuse("\(primaries.map(\.address).joined(separator: ", ")) is still a primary; stop it first")
        }
        if let node, !reachable.contains(where: { $0.address == node && ($0.role == "replica" || $0.role == "fenced") }) {
            throw refuse("\(node) is not a reachable replica")
        }
        // Fence first: once all but `minimumInSync` nodes have promised the new epoch, no older primary
        // can gather `minimumInSync` replicas to acknowledge a write, so what the promisers hold no
        // longer grows under an old epoch.
        // A node promises an epoch to one promotion only: of two that picked the same epoch at once
        // (a deposed controller still finishing its round), at most one gets enough promises.
        let epoch = max(minimumEpoch, (reachable.map { max($0.number("promised"), $0.number("epoch")) }.max() ?? 0) + 1)
        let promotion = UUID16.random()
        var promisers: [String] = []
        for target in reachable where await transport.promise(target.address, epoch: epoch, promotion: promotion, timeout: timeout) {
            promisers.append(target.address)
        }
        guard promisers.count >= total - minimumInSync || force else {
            throw LearnStoreError(
                .storageUnavailable, "only \(promisers.count) nodes promised epoch \(epoch) (\(total - minimumInSync) needed); nothing was promoted")
        }
        // Then choose, from what the promisers hold now: every acknowledged write is on the old primary
        // and `minimumInSync` replicas, so on at least one of all but `minimumInSync` promisers.
        let promised = await self.statuses(promisers, over: transport, timeout: timeout).filter { $0.status != nil }
        guard promised.count >= total - minimumInSync || force else {
            throw LearnStoreError(
                .storageUnavailable, "only \(promised.count) of the nodes that promised epoch \(epoch) answered again (\(total - minimumInSync) needed); nothing was promoted")
        }
        // A fenced old primary holds every write it acknowledged: it may be the most up to date.
        let replicas = promised.filter { $0.role == "replica" || $0.role == "fenced" }
        guard var best = replicas.max(by: { $0.upToDate < $1.upToDate }) else { throw LearnStoreError(.notFound, "no reachable replica to promote") }
        if let eligible, !eligible.contains(best.address) {
            guard let candidate = replicas.filter({ eligible.contains($0.address) }).max(by: { $0.upToDate < $1.upToDate }),
                candidate.upToDate >= best.upToDate
            else {
                throw LearnStoreError(.notYet, "\(best.address) holds the most of the log but is not registered in etcd; waiting for it")
            }
            best = candidate
        }
        if let preferred, !preferred.contains(best.address),
            let candidate = replicas.first(where: {
                preferred.contains($0.address) && (eligible?.contains($0.address) ?? true) && $0.upToDate >= best.upToDate
            })
        {
            best = candidate
        }
        let equals = replicas.filter {
            (preferred?.contains($0.address) ?? true) && (eligible?.contains($0.address) ?? true) && $0.upToDate >= best.upToDate
        }
        if let calmest = equals.min(by: { (otherPrimaries[$0.address] ?? 0, $0.address) < (otherPrimaries[$1.address] ?? 0, $1.address) }),
            otherPrimaries[calmest.address] ?? 0 < otherPrimaries[best.address] ?? 0
        {
            best = calmest
        }
        var chosen = best
        if let node {
            guard let asked = replicas.first(where: { $0.address == node }) else { throw refuse("\(node) is not a reachable replica") }
            guard asked.upToDate >= best.upToDate || force else {
                throw refuse("\(best.address) is more up to date (epoch \(best.upToDate.0), LSN \(best.upToDate.1)); promote it instead")
            }
            chosen = asked
        }
        let (nodeID, reply) = try await transport.promote(chosen.address, epoch: epoch, promotion: promotion)
        return Outcome(address: chosen.address, nodeID: nodeID, epoch: reply.epoch, firstLSN: reply.firstLSN, promisedBy: promisers.count)
    }
}

/// How a promotion reaches the nodes: ``NodeTransport`` over their replication ports, or the
/// simulated nodes of the control plane's simulation.
protocol PromotionTransport: Sendable {
    /// The node's STATUS document, or why it did not answer.
    func status(_ address: String, timeout: TimeAmount) async -> ClusterPromotion.NodeStatus
    /// Asks the node to promise `epoch` to `promotion`; whether it did (not when it promised that
    /// epoch, or a higher one, to another promotion).
    func promise(_ address: String, epoch: UInt64, promotion: UUID16, timeout: TimeAmount) async -> Bool
    /// Makes the node the primary of `epoch` (at least), which it promised to `promotion`; its id and answer.
    func promote(_ address: String, epoch: UInt64, promotion: UUID16) async throws(LearnStoreError) -> (nodeID: String, reply: PromoteReply)
    /// Asks the primary at `address` to hand its place over (HANDOVER); its answer.
    func handover(_ address: String, _ request: HandoverRequest, timeout: TimeAmount) async throws(LearnStoreError) -> HandoverReply
}

/// The nodes' replication ports, as the operator or the controller reaches them.
struct NodeTransport: PromotionTransport {
    let credential: NodeCredential
    let group: any EventLoopGroup

    func status(_ address: String, timeout: TimeAmount) async -> ClusterPromotion.NodeStatus {
        do {
            let answer = try await NodeClient.request(
                address, credential: credential, nodeID: "operator", opcode: ReplicationOpcode.status, group: group, timeout: timeout)
            guard let frame = answer.reply else { throw LearnStoreError(.protocolViolation, "no STATUS answer") }
            let text = try frame.readPayload { (r) throws(DecodeError) in try r.readString() }
            return ClusterPromotion.NodeStatus(address: address, status: try JSONValue.parse(text), error: nil)
        } catch {
            return ClusterPromotion.NodeStatus(address: address, status: nil, error: "\(error)")
        }
    }

    func promise(_ address: String, epoch: UInt64, promotion: UUID16, timeout: TimeAmount) async -> Bool {
        guard let answer = try? await NodeClient.request(
            address, credential: credential, nodeID: "operator", opcode: ReplicationOpcode.promise, payload: Self.payload(epoch, promotion),
            group: group, timeout: timeout),
            let frame = answer.reply,
            let reply = try? frame.readPayload({ (r) throws(DecodeError) in try ReplicationMessages.decodePromiseReply(from: &r) })
        else { return false }
        return reply.granted && reply.promised == epoch
    }

    func promote(_ address: String, epoch: UInt64, promotion: UUID16) async throws(LearnStoreError) -> (nodeID: String, reply: PromoteReply) {
        let answer = try await NodeClient.request(
            address, credential: credential, nodeID: "operator", opcode: ReplicationOpcode.promote, payload: Self.payload(epoch, promotion),
            group: group, timeout: .seconds(60))
        guard let frame = answer.reply,
            let reply = try? frame.readPayload({ (r) throws(DecodeError) in try ReplicationMessages.decodePromoteReply(from: &r) })
        else { throw LearnStoreError(.protocolViolation, "\(address): an undecodable PROMOTE answer") }
        return (answer.peerNodeID, reply)
    }

    func handover(_ address: String, _ request: HandoverRequest, timeout: TimeAmount) async throws(LearnStoreError) -> HandoverReply {
        var payload = ByteWriter(capacity: 96)
        ReplicationMessages.encode(request, into: &payload)
        let answer = try await NodeClient.request(
            address, credential: credential, nodeID: "operator", opcode: ReplicationOpcode.handover, payload: payload.bytes, group: group, timeout: timeout)
        guard let frame = answer.reply else { throw LearnStoreError(.protocolViolation, "\(address): no HANDOVER answer") }
        if frame.header.isError {
            throw (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                ?? LearnStoreError(.protocolViolation, "\(address): an undecodable HANDOVER error")
        }
        guard let reply = try? frame.readPayload({ (r) throws(DecodeError) in try ReplicationMessages.decodeHandoverReply(from: &r) }) else {
            throw LearnStoreError(.protocolViolation, "\(address): an undecodable HANDOVER answer")
        }
        return reply
    }

    private static func payload(_ epoch: UInt64, _ promotion: UUID16) -> [UInt8] {
        var payload = ByteWriter(capacity: 24)
        ReplicationMessages.encode(PromoteRequest(epoch: epoch, promotion: promotion), into: &payload)
        return payload.bytes
    }
}
