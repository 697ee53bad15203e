import Dispatch
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import NIOPosix
import Synchronization

/// A replica following its primary: it finds the primary among the configured nodes, streams its
/// log from the last LSN this node holds, applies each record to the tenant it belongs to and
/// queues it in this node's log at the same LSN, and acknowledges what its log made durable. It
/// reconnects by itself (to whichever node is the primary by then) when the stream breaks or stays
/// silent past the limit. Everything runs on one event loop.
final class ReplicaFollower: @unchecked Sendable {
    private let node: ReplicationNode
    private let wal: WriteAheadLog
    private let registry: TenantRegistry
    private let group: any EventLoopGroup
    let loop: any EventLoop
    private var channel: (any Channel)?
    private var stopped = false
    private var nextAddress = 0
    private var backoffMilliseconds: Int64 = 20
    /// The last LSN applied to this node's tenants (and queued in its log).
    private(set) var appliedLSN: UInt64
    private var streamingEpoch: UInt64?
    private let ackQueued = Atomic<Bool>(false)
    /// The last ACK sent: what it said and when (by the node's clock).
    private var lastAck: (durableLSN: UInt64, milliseconds: Int64)?
    /// `stopped`, for other threads: nothing is handed to the loop once it is set (the loop may be
    /// shutting down with the server).
    private let halted = Atomic<Bool>(false)

    /// The RECORDS frames a replica accepts whatever its frame limit: records travel whole, so one
    /// frame may carry a batch read up to the primary's frame size and then the largest record a log
    /// takes (``WALConfiguration/maximumRecordBodyBytes``).
    static let largestRecordsFrameBytes = WALRecord.maximumBodyBytes + (1 << 20)

    init(node: ReplicationNode, wal: WriteAheadLog, registry: TenantRegistry, group: any EventLoopGroup) {
        self.node = node
        self.wal = wal
        self.registry = registry
        self.group = group
        loop = group.next()
        appliedLSN = wal.locallyDurableLSN
    }

    func start() {
        loop.execute { self.connect() }
    }

    /// Stops following and waits until the connection is closed.
    func stop() async {
        halted.store(true, ordering: .releasing)
        let closed: EventLoopFuture<Void> = loop.flatSubmit {
            self.stopped = true
            guard let channel = self.channel else { return self.loop.makeSucceededVoidFuture() }
            channel.close(promise: nil)
            return channel.closeFuture
        }
        try? await closed.get()
    }

    /// This node's log made `lsn` durable (any thread): acknowledge it.
    func locallyCommitted(_ lsn: UInt64) {
        if wal.hasFailures, !halted.load(ordering: .acquiring) {
            node.failStop("a write to the replica's log failed")
            return
        }
        guard !halted.load(ordering: .acquiring), !ackQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        loop.execute {
            self.ackQueued.store(false, ordering: .releasing)
            self.sendAck()
        }
    }

    // MARK: connecting

    private func connect() {
        guard !stopped else { return }
        let addresses = node.followAddresses.withLock { $0 }
        guard !addresses.isEmpty else {
            node.followerProblem("no other node known to follow yet")
            return retry()
        }
        let address = addresses[nextAddress % addresses.count]
        nextAddress += 1
        guard let (host, port) = HostPort.split(address) else {
            node.followerProblem("'\(address)' is not host:port")
            return retry()
        }
        let handler = ReplicaStreamHandler(follower: self, credential: node.credential, nodeID: node.configuration.nodeID)
        let silence = TimeAmount.milliseconds(node.configuration.silenceLimitMilliseconds)
        let maximumFrameBytes = max(node.configuration.maximumFrameBytes, Self.largestRecordsFrameBytes)
        ClientBootstrap(group: loop)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: silence))
                    try channel.pipeline.syncOperations.addHandler(handler)
                    handler.maximumFrameBytes = maximumFrameBytes
                }
            }
            .connect(hostOrAddress: host, port: port)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    if self.stopped {
                        channel.close(promise: nil)
                        return
                    }
                    self.channel = channel
                    channel.closeFuture.whenComplete { _ in
                        self.channel = nil
                        self.streamingEpoch = nil
                        self.lastAck = nil
                        self.retry()
                    }
                case .failure(let error):
                    self.node.followerProblem("cannot connect to \(address): \(error)")
                    self.retry()
                }
            }
    }

    private func retry() {
        guard !stopped, !halted.load(ordering: .acquiring) else { return }
        let delay = backoffMilliseconds
        // A promotion takes tens of milliseconds and the new primary acknowledges nothing until a replica
        // is in sync with it: retry soon, then every 100 ms (a connection attempt on the cluster's
        // network costs little).
        backoffMilliseconds = min(backoffMilliseconds * 2, 100)
        loop.scheduleTask(in: .milliseconds(delay)) { self.reconnectWhenResolved() }
    }

    /// Before asking for records again, everything applied must be resolved in this node's log: a
    /// write that failed here was undone, and is asked for again.
    private func reconnectWhenResolved() {
        let wal = self.wal
        let applied = appliedLSN
        DispatchQueue.global().async {
            let durable = wal.waitUntilLocallyResolved(applied)
            guard !self.halted.load(ordering: .acquiring) else { return }
            self.loop.execute {
                if !durable { self.appliedLSN = min(self.appliedLSN, wal.locallyDurableLSN) }
                self.connect()
            }
        }
    }

    // MARK: the stream (on `loop`)

    /// The handshake succeeded with `peer`: follow it if it is the primary of this node's epoch or a newer one.
    func authenticated(_ reply: NodeAuthReply, peer: String, channel: any Channel) -> ReplicateRequest? {
        guard reply.role == .primary else {
            node.followerProblem("node \(peer) is a \(reply.role.name), not a primary")
            return nil
        }
        let epoch = node.epoch
        guard reply.epoch >= epoch else {
            node.followerProblem("node \(peer) is the primary of epoch \(reply.epoch), older than this node's \(epoch): fenced")
            var writer = ByteWriter(capacity: 96)
            writer.writeErrorFrame(opcode: ReplicationOpcode.records, requestID: 0,
                                   LearnStoreError(.fenced, "node \(node.configuration.nodeID) knows epoch \(epoch)"))
            channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
            return nil
        }
        let history = node.history
        return ReplicateRequest(epochs: history.starts.map { EpochStart(epoch: $0.epoch, firstLSN: $0.firstLSN) }, promised: history.promised, lastLSN: appliedLSN)
    }

    /// The primary accepted: adopt its newer epochs and stream, unless this node must cut its log first.
    func accepted(_ accepted: ReplicateAccepted, peer: String) -> Bool {
        if accepted.truncate {
            node.followerProblem(
                "this node holds records after LSN \(accepted.startAfter) that primary \(peer) does not (written by an old primary); it restarts to cut its log there")
            node.requestRestart("its log holds records after LSN \(accepted.startAfter) that primary \(peer) does not")
            return false
        }
        do {
            try node.adopt(accepted.epochs, primary: peer)
        } catch {
            node.followerProblem("cannot record the primary's epochs: \(error)")
            return false
        }
        streamingEpoch = accepted.epoch
        backoffMilliseconds = 20
        node.logger.info("following", metadata: ["primary": "\(peer)", "epoch": "\(accepted.epoch)", "after_lsn": "\(accepted.startAfter)"])
        return true
    }

    /// Applies one RECORDS frame. Returns an error to end the stream with.
    func received(_ frame: ReplicationRecords) -> LearnStoreError? {
        guard let epoch = streamingEpoch, frame.epoch == epoch else {
            return LearnStoreError(.fenced, "RECORDS of epoch \(frame.epoch) on a stream of epoch \(streamingEpoch ?? 0)")
        }
        if let refusal = promisedPast(epoch) { return refusal }
        let registry = self.registry
        let before = appliedLSN
        let (applied, failure) = ReplicatedApply.apply(frame.records, after: appliedLSN) { registry.tenant($0) }
        appliedLSN = applied
        if applied > before { wal.writeNow() }
        if let metrics = node.metrics, applied > before {
            metrics.recordsApplied.increment(by: ShippedRecords.count(frame.records, through: applied))
        }
        if let failure {
            if failure.code == .storageUnavailable || wal.hasFailures { node.failStop("\(failure)") }
            return failure
        }
        node.followed(appliedLSN: appliedLSN, primaryCommitLSN: frame.commitLSN, inSync: frame.inSync)
        // With records, the log's commit sends the ACK. A frame without records is a heartbeat or a
        // new commit mark (one per commit of the primary): answered when there is news or the last
        // ACK is half a heartbeat old, so the primary keeps hearing from the replica without an
        // extra ACK per commit.
        if applied == before, quietFrameNeedsAnswer() { sendAck() }
        return nil
    }

    func problem(_ text: String) {
        node.followerProblem(text)
    }

    /// The primary refused to stream: a position its log no longer holds means a copy at the next start.
    func refused(_ error: LearnStoreError?) {
        node.followerProblem("the node refused: \(error.map { "\($0)" } ?? "an undecodable error")")
        if error?.code == .logTruncated { node.requestRestart("the primary's log no longer holds this node's next record; it copies the primary at its start") }
    }

    private func quietFrameNeedsAnswer() -> Bool {
        guard let lastAck else { return true }
        let durable = min(wal.locallyDurableLSN, appliedLSN)
        return durable != lastAck.durableLSN || node.clock.now().milliseconds - lastAck.milliseconds >= node.configuration.heartbeatMilliseconds / 2
    }

    /// Once this node has promised a newer epoch to a promotion, it takes no more records of an older
    /// primary and acknowledges none: the promotion chooses the new primary from what the nodes that
    /// promised hold after promising, so nothing they take afterwards may count as acknowledged.
    private func promisedPast(_ epoch: UInt64) -> LearnStoreError? {
        let promised = node.promisedEpoch
        guard promised > epoch else { return nil }
        return LearnStoreError(.fenced, "this node promised epoch \(promised) to a promotion; it takes no more records of epoch \(epoch)")
    }

    private func sendAck() {
        guard let channel, let epoch = streamingEpoch, promisedPast(epoch) == nil else { return }
        let durable = min(wal.locallyDurableLSN, appliedLSN)
        lastAck = (durable, node.clock.now().milliseconds)
        var writer = ByteWriter(capacity: 48)
        writer.writeFrame(FrameHeader(opcode: ReplicationOpcode.ack, requestID: 0)) {
            ReplicationMessages.encode(ReplicationAck(epoch: epoch, durableLSN: durable, appliedLSN: appliedLSN), into: &$0)
        }
        channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
    }
}

/// The replica's side of one replication connection: the node handshake, REPLICATE, then RECORDS.
final class ReplicaStreamHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case handshake(NodeHandshakeClient)
        case replicate(peer: String)
        case streaming
    }

    private let follower: ReplicaFollower
    private var phase: Phase
    /// The limit once the peer proved the secret; before, its frames are the handshake's few dozen bytes.
    var maximumFrameBytes = 16 << 20
    private var frames = FrameAccumulator(maximumFrameBytes: ReplicationServerHandler.handshakeFrameBytes)

    init(follower: ReplicaFollower, credential: NodeCredential, nodeID: String) {
        self.follower = follower
        phase = .handshake(NodeHandshakeClient(credential: credential, nodeID: nodeID))
    }

    func channelActive(context: ChannelHandlerContext) {
        if case .handshake(let handshake) = phase, case .send(let opcode, let payload) = handshake.hello() {
            send(opcode, context: context) { $0.writeBytes(payload) }
        }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            follower.problem("the primary sent nothing for the silence limit; reconnecting")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let received: [Frame]
        do { received = try frames.add(unwrapInboundIn(data)) } catch {
            follower.problem("the primary sent a bad frame: \(error.message)")
            context.close(promise: nil)
            return
        }
        for frame in received where context.channel.isActive {
            if frame.header.isError {
                follower.refused(try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                context.close(promise: nil)
                return
            }
            handle(frame, context: context)
        }
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        do throws(DecodeError) {
            switch phase {
            case .handshake(var handshake):
                let step: NodeHandshakeClient.Step
                do throws(LearnStoreError) { step = try handshake.receive(frame) } catch {
                    follower.problem(error.message)
                    context.close(promise: nil)
                    return
                }
                phase = .handshake(handshake)
                switch step {
                case .send(let opcode, let payload):
                    send(opcode, context: context) { $0.writeBytes(payload) }
                case .authenticated(let peer, let reply):
                    frames.raiseLimit(to: maximumFrameBytes)
                    guard let request = follower.authenticated(reply, peer: peer, channel: context.channel) else {
                        context.close(promise: nil)
                        return
                    }
                    phase = .replicate(peer: peer)
                    send(ReplicationOpcode.replicate, context: context) { ReplicationMessages.encode(request, into: &$0) }
                }
            case .replicate(let peer):
                guard frame.header.opcode == ReplicationOpcode.replicate else { return unexpected(frame, context) }
                let accepted = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAccepted(from: &r) }
                guard follower.accepted(accepted, peer: peer) else {
                    context.close(promise: nil)
                    return
                }
                phase = .streaming
            case .streaming:
                guard frame.header.opcode == ReplicationOpcode.records else { return unexpected(frame, context) }
                let records = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeRecords(from: &r) }
                if let error = follower.received(records) {
                    follower.problem("\(error)")
                    context.close(promise: nil)
                }
            }
        } catch {
            follower.problem("the primary sent an undecodable frame: \(error)")
            context.close(promise: nil)
        }
    }

    private func unexpected(_ frame: Frame, _ context: ChannelHandlerContext) {
        follower.problem("unexpected opcode 0x\(String(frame.header.opcode, radix: 16)) from the primary")
        context.close(promise: nil)
    }

    private func send(_ opcode: UInt8, context: ChannelHandlerContext, _ payload: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 96)
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: 0), payload: payload)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
    }
}
