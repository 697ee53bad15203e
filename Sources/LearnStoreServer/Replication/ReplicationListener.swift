import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The node stopped so that it starts again (``ReplicationNode/requestRestart(_:)``).
public struct NodeRestartRequested: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { "the node must restart: \(reason)" }
}

/// The replication port as a service: replicas follow this node here, operators promote and
/// inspect it. Every connection starts with the node handshake (docs/PROTOCOL.md, E.2).
public final class ReplicationListener: Service, Sendable {
    let node: ReplicationNode
    let group: any EventLoopGroup
    let walSource: @Sendable () -> (WriteAheadLog, DataDirectory, any FileSystem)?
    /// Serves PARTITION_EXPORT in a partitioned cluster; nil otherwise.
    let exporter: PartitionExporter?
    private let channelBox = LockedBox<(any Channel)?>(nil)
    private let bound = LockedBox<EventLoopPromise<SocketAddress>?>(nil)
    /// Whether `bound` was completed (a promise is completed once, and never left pending).
    private let boundCompleted = LockedBox(false)

    init(
        node: ReplicationNode, group: any EventLoopGroup, exporter: PartitionExporter? = nil,
        walSource: @escaping @Sendable () -> (WriteAheadLog, DataDirectory, any FileSystem)?
    ) {
        self.node = node
        self.group = group
        self.walSource = walSource
        self.exporter = exporter
        bound.value = group.next().makePromise()
    }

    /// The address the port is bound to, once `run()` has bound it.
    public var localAddress: SocketAddress {
        get async throws { try await bound.value!.futureResult.get() }
    }

    public func run() async throws {
        let node = self.node
        let walSource = self.walSource
        let bound = self.bound.value!
        let channel: any Channel
        do {
            channel = try await bind(node: node, walSource: walSource)
        } catch {
            boundCompleted.value = true
            bound.fail(error)
            throw error
        }
        channelBox.value = channel
        boundCompleted.value = true
        if let address = channel.localAddress { bound.succeed(address) } else { bound.fail(ChannelError.unknownLocalAddress) }
        node.logger.info("replication port", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "role": "\(node.role.name)"])
        let ticker = channel.eventLoop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) { _ in node.tick() }
        node.onFailStop { channel.close(promise: nil) }
        let stopRequested = Atomic<Bool>(false)
        await withGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onGracefulShutdown: {
            stopRequested.store(true, ordering: .relaxed)
            channel.close(promise: nil)
        }
        ticker.cancel()
        await node.endSessions()
        await node.stopFollowing()
        if let fatal = node.fatalProblem {
            throw LearnStoreError(.storageUnavailable, "replication stopped the node: \(fatal)")
        }
        // A node being stopped stays stopped: a restart it asked for meanwhile (replaced while it
        // stopped) is what its next start does anyway.
        if let reason = node.restartReason {
            if stopRequested.load(ordering: .relaxed) {
                node.logger.notice("not restarting: the node was asked to stop", metadata: ["reason": "\(reason)"])
            } else {
                throw NodeRestartRequested(reason: reason)
            }
        }
    }

    private func bind(node: ReplicationNode, walSource: @escaping @Sendable () -> (WriteAheadLog, DataDirectory, any FileSystem)?) async throws -> any Channel {
        let (host, port) = (node.configuration.host, node.configuration.port)
        let exporter = self.exporter
        return try await ListenFailure.naming("replication (--replication-port)", host: host, port: port) {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 64)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ReplicationServerHandler(node: node, exporter: exporter, walSource: walSource))
                    }
                }
                .bind(host: host, port: port).get()
        }
    }

    /// The listener will never run (its application failed to start): nobody may wait for its address.
    /// Called while the event loops still run (a promise failed on a stopped loop is never completed).
    func abandon() {
        guard !boundCompleted.value else { return }
        boundCompleted.value = true
        bound.value?.fail(ChannelError.ioOnClosedChannel)
    }

    deinit { abandon() }
}

/// One connection on the replication port: the node handshake, then one of REPLICATE (the
/// connection becomes a shipping session), PROMOTE or STATUS.
final class ReplicationServerHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase {
        case hello
        case auth(clientNonce: [UInt8], serverNonce: [UInt8], peer: String)
        case ready(peer: String)
        case shipping(ShippingSession)
        /// Sending a catch-up copy (CATCH_UP): nothing more is read from the replica.
        case copying
        case done
    }

    private let node: ReplicationNode
    private let walSource: @Sendable () -> (WriteAheadLog, DataDirectory, any FileSystem)?
    private let exporter: PartitionExporter?
    private var phase = Phase.hello
    private var frames: FrameAccumulator
    private var handshakeTimeout: Scheduled<Void>?
    private var admitted = true
    /// A PARTITION_EXPORT is being answered: one at a time per connection, so a peer holds at most one
    /// piece (4 MiB) of this node's memory per connection.
    private var exporting = false

    init(node: ReplicationNode, exporter: PartitionExporter?, walSource: @escaping @Sendable () -> (WriteAheadLog, DataDirectory, any FileSystem)?) {
        self.node = node
        self.exporter = exporter
        self.walSource = walSource
        // Before the node proves the secret, frames are the handshake's: a few dozen bytes.
        frames = FrameAccumulator(maximumFrameBytes: Self.handshakeFrameBytes)
    }

    static let handshakeFrameBytes = 1 << 10

    func channelActive(context: ChannelHandlerContext) {
        guard node.admitConnection() else {
            admitted = false
            reject(LearnStoreError(.tooManyConnections, "the replication port takes at most \(ReplicationNode.maximumConnections) connections"),
                   opcode: 0, context: context)
            return
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        handshakeTimeout = context.eventLoop.scheduleTask(in: .seconds(10)) { [self] in
            if case .hello = phase { reject(LearnStoreError(.timeout, "no node handshake within 10 s"), opcode: ReplicationOpcode.nodeHello, context: loopBound.value) }
            if case .auth = phase { reject(LearnStoreError(.timeout, "no node handshake within 10 s"), opcode: ReplicationOpcode.nodeAuth, context: loopBound.value) }
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if admitted { node.connectionClosed() }
        handshakeTimeout?.cancel()
        if case .shipping(let session) = phase {
            session.stop()
            node.sessionEnded(session, nodeID: session.nodeID)
        }
        phase = .done
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if case .shipping(let session) = phase, context.channel.isWritable { session.pump() }
        context.fireChannelWritabilityChanged()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let received: [Frame]
        do {
            received = try frames.add(unwrapInboundIn(data))
        } catch {
            reject(LearnStoreError(error.code, error.message), opcode: 0, context: context)
            return
        }
        for frame in received {
            handle(frame, context: context)
            if case .done = phase { return }
        }
    }

    private func handle(_ frame: Frame, context: ChannelHandlerContext) {
        let opcode = frame.header.opcode
        switch phase {
        case .hello:
            guard opcode == ReplicationOpcode.nodeHello else {
                return reject(LearnStoreError(.unauthenticated, "the replication port expects NODE_HELLO first"), opcode: opcode, context: context)
            }
            let hello: NodeHello
            do { hello = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeHello(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "NODE_HELLO: \(error)"), opcode: opcode, context: context)
            }
            guard hello.version == NodeHello.currentVersion else {
                return reject(
                    LearnStoreError(.unsupportedVersion, "replication protocol version \(hello.version) is not supported (\(NodeHello.currentVersion) is)"),
                    opcode: opcode, context: context)
            }
            guard NodeCredential.isValidNodeID(hello.nodeID) else {
                return reject(LearnStoreError(.validation, "invalid node id"), opcode: opcode, context: context)
            }
            let nonce = NodeCredential.nonce()
            phase = .auth(clientNonce: hello.nonce, serverNonce: nonce, peer: hello.nodeID)
            reply(opcode: opcode, frame.header.requestID, context: context) {
                ReplicationMessages.encode(NodeHelloReply(nodeID: node.configuration.nodeID, nonce: nonce), into: &$0)
            }
        case .auth(let clientNonce, let serverNonce, let peer):
            guard opcode == ReplicationOpcode.nodeAuth else {
                return reject(LearnStoreError(.unauthenticated, "NODE_AUTH must follow NODE_HELLO"), opcode: opcode, context: context)
            }
            let proof: [UInt8]
            do { proof = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAuth(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "NODE_AUTH: \(error)"), opcode: opcode, context: context)
            }
            guard node.credential.verify(proof, .client, clientNonce: clientNonce, serverNonce: serverNonce, nodeID: peer) else {
                node.logger.warning("replication port: a node failed to prove the cluster secret", metadata: ["node": "\(peer)"])
                return reject(LearnStoreError(.unauthenticated, "the proof does not match this cluster's secret"), opcode: opcode, context: context)
            }
            handshakeTimeout?.cancel()
            frames.raiseLimit(to: node.configuration.maximumFrameBytes)
            phase = .ready(peer: peer)
            let mine = node.credential.proof(.server, clientNonce: clientNonce, serverNonce: serverNonce, nodeID: node.configuration.nodeID)
            let last = walSource()?.0.locallyDurableLSN ?? 0
            let answer = NodeAuthReply(proof: mine, role: node.role, epoch: node.epoch, lastLSN: last)
            reply(opcode: opcode, frame.header.requestID, context: context) { ReplicationMessages.encode(answer, into: &$0) }
        case .ready(let peer):
            ready(frame, peer: peer, context: context)
        case .shipping(let session):
            if frame.header.isError {
                // The replica refuses this stream: a newer epoch exists.
                let error = (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                if error?.code == .fenced {
                    node.fence(reason: "replica \(session.nodeID): \(error?.message ?? "")")
                }
                context.close(promise: nil)
                return
            }
            guard opcode == ReplicationOpcode.ack else {
                return reject(LearnStoreError(.badFrame, "a replica sends only ACK frames"), opcode: opcode, context: context)
            }
            let ack: ReplicationAck
            do { ack = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeAck(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "ACK: \(error)"), opcode: opcode, context: context)
            }
            guard ack.epoch == node.epoch else {
                return reject(LearnStoreError(.fenced, "ACK of epoch \(ack.epoch); this node is at epoch \(node.epoch)"), opcode: opcode, context: context)
            }
            node.acknowledged(ack, from: session.nodeID)
        case .copying, .done:
            return
        }
    }

    private func ready(_ frame: Frame, peer: String, context: ChannelHandlerContext) {
        let opcode = frame.header.opcode
        switch opcode {
        case ReplicationOpcode.replicate:
            guard let (accepted, wal, data, fileSystem) = acceptFollower(frame, peer: peer, context: context) else { return }
            guard let position = wal.shippingTail.position(after: accepted.startAfter) else {
                return reject(LearnStoreError(.logTruncated, "the primary's WAL no longer holds the records after LSN \(accepted.startAfter); the replica copies the primary's files when it starts (restart it)"), opcode: opcode, context: context)
            }
            reply(opcode: opcode, frame.header.requestID, context: context) { ReplicationMessages.encode(accepted, into: &$0) }
            let session = ShippingSession(
                nodeID: peer, node: node, wal: wal, walDirectory: data.walDirectory, fileSystem: fileSystem, channel: context.channel,
                position: position, startAfter: accepted.startAfter, epoch: accepted.epoch)
            phase = .shipping(session)
            if accepted.truncate {
                // The replica cuts its log first and connects again; nothing is shipped on this connection.
                node.logger.notice("replica must truncate its log", metadata: ["replica": "\(peer)", "after_lsn": "\(accepted.startAfter)"])
            }
            node.sessionStarted(session, nodeID: peer, lastLSN: accepted.startAfter)
            node.logger.info("replica following", metadata: ["replica": "\(peer)", "after_lsn": "\(accepted.startAfter)", "epoch": "\(accepted.epoch)"])
            session.start()
        case ReplicationOpcode.catchUp:
            guard let (accepted, wal, data, fileSystem) = acceptFollower(frame, peer: peer, context: context) else { return }
            phase = .copying
            CatchUpSender(node: node, replica: peer, channel: context.channel, requestID: frame.header.requestID, epoch: accepted.epoch, epochs: accepted.epochs)
                .start(wal: wal, data: data, fileSystem: fileSystem)
        case ReplicationOpcode.promote:
            let requestID = frame.header.requestID
            let asked: PromoteRequest
            do { asked = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromote(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "PROMOTE: \(error)"), opcode: opcode, context: context, close: false)
            }
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let node = self.node
            let promise = context.eventLoop.makePromise(of: Result<PromoteReply, LearnStoreError>.self)
            promise.completeWithTask {
                do throws(LearnStoreError) { return .success(try await node.promote(atLeast: asked.epoch, promotion: asked.promotion)) } catch { return .failure(error) }
            }
            promise.futureResult.whenSuccess { result in
                let (handler, context) = loopBound.value
                switch result {
                case .success(let answer):
                    handler.reply(opcode: opcode, requestID, context: context) { ReplicationMessages.encode(answer, into: &$0) }
                case .failure(let error):
                    handler.reject(error, opcode: opcode, requestID: requestID, context: context, close: false)
                }
            }
        case ReplicationOpcode.promise:
            let asked: PromoteRequest
            do { asked = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePromote(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "PROMISE: \(error)"), opcode: opcode, context: context, close: false)
            }
            do {
                let answer = try node.promise(asked.epoch, to: asked.promotion)
                reply(opcode: opcode, frame.header.requestID, context: context) { ReplicationMessages.encode(answer, into: &$0) }
            } catch {
                reject(error, opcode: opcode, requestID: frame.header.requestID, context: context, close: false)
            }
        case ReplicationOpcode.handover:
            let asked: HandoverRequest
            do { asked = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeHandover(from: &r) } } catch {
                return reject(LearnStoreError(.badFrame, "HANDOVER: \(error)"), opcode: opcode, context: context, close: false)
            }
            do {
                let answer = try node.handover(asked)
                reply(opcode: opcode, frame.header.requestID, context: context) { ReplicationMessages.encode(answer, into: &$0) }
            } catch {
                reject(error, opcode: opcode, requestID: frame.header.requestID, context: context, close: false)
            }
        case ReplicationOpcode.partitionExport:
            exportPiece(frame, context: context)
        case ReplicationOpcode.status:
            let text = node.status().serialized
            reply(opcode: opcode, frame.header.requestID, context: context) { $0.writeString(text) }
        default:
            reject(LearnStoreError(.unknownOpcode, "opcode 0x\(String(opcode, radix: 16)) is not a replication request"), opcode: opcode, context: context, close: false)
        }
    }

    /// PARTITION_EXPORT: one piece of a moving partition's tenants, answered when the exporter has it.
    private func exportPiece(_ frame: Frame, context: ChannelHandlerContext) {
        let opcode = frame.header.opcode
        let requestID = frame.header.requestID
        let request: PartitionExportRequest
        do { request = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodePartitionExport(from: &r) } } catch {
            return reject(LearnStoreError(.badFrame, "PARTITION_EXPORT: \(error)"), opcode: opcode, requestID: requestID, context: context, close: false)
        }
        guard let exporter else {
            return reject(LearnStoreError(.validation, "this node is not part of a partition map"), opcode: opcode, requestID: requestID, context: context, close: false)
        }
        guard !exporting else {
            return reject(LearnStoreError(.conflict, "one PARTITION_EXPORT at a time per connection: wait for the answer"), opcode: opcode, requestID: requestID,
                          context: context, close: false)
        }
        exporting = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let promise = context.eventLoop.makePromise(of: Result<PartitionExportPiece, LearnStoreError>.self)
        promise.completeWithTask {
            do throws(LearnStoreError) { return .success(try await exporter.piece(request)) } catch { return .failure(error) }
        }
        promise.futureResult.whenSuccess { result in
            let (handler, context) = loopBound.value
            handler.exporting = false
            switch result {
            case .success(let piece):
                exporter.piecesExported?.increment()
                handler.reply(opcode: opcode, requestID, context: context) { ReplicationMessages.encode(piece, into: &$0) }
            case .failure(let error):
                handler.reject(error, opcode: opcode, requestID: requestID, context: context, close: false)
            }
        }
    }

    /// REPLICATE and CATCH_UP: the follower's history must not know a newer epoch than this primary's
    /// (a node that does fences it). Rejects and returns nil otherwise.
    private func acceptFollower(_ frame: Frame, peer: String, context: ChannelHandlerContext)
        -> (ReplicateAccepted, WriteAheadLog, DataDirectory, any FileSystem)?
    {
        let opcode = frame.header.opcode
        let request: ReplicateRequest
        do { request = try frame.readPayload { (r) throws(DecodeError) in try ReplicationMessages.decodeReplicate(from: &r) } } catch {
            reject(LearnStoreError(.badFrame, "\(opcode == ReplicationOpcode.catchUp ? "CATCH_UP" : "REPLICATE"): \(error)"), opcode: opcode, context: context)
            return nil
        }
        guard let (wal, data, fileSystem) = walSource() else {
            reject(LearnStoreError(.loading, "the node is recovering its data"), opcode: opcode, context: context)
            return nil
        }
        switch node.accept(request, from: peer) {
        case .success(let accepted):
            return (accepted, wal, data, fileSystem)
        case .failure(let error):
            if error.code == .fenced { node.fence(reason: "replica \(peer) knows epoch \(request.epoch)") }
            reject(error, opcode: opcode, context: context)
            return nil
        }
    }

    private func reply(opcode: UInt8, _ requestID: UInt32, context: ChannelHandlerContext, _ payload: (inout ByteWriter) -> Void) {
        var writer = ByteWriter(capacity: 128)
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: requestID), payload: payload)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
    }

    private func reject(_ error: LearnStoreError, opcode: UInt8, requestID: UInt32 = 0, context: ChannelHandlerContext, close: Bool = true) {
        var writer = ByteWriter(capacity: 128)
        writer.writeErrorFrame(opcode: opcode, requestID: requestID, error)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
        if close {
            if case .shipping(let session) = phase {
                session.stop()
                node.sessionEnded(session, nodeID: session.nodeID)
            }
            phase = .done
            context.close(promise: nil)
        }
    }
}

/// Frames out of a byte stream, for the replication connections.
struct FrameAccumulator {
    private var cumulation: ByteBuffer?
    private var decoder: FrameDecoder

    init(maximumFrameBytes: Int) {
        decoder = FrameDecoder(maximumFrameBytes: maximumFrameBytes)
    }

    mutating func raiseLimit(to maximumFrameBytes: Int) {
        decoder = FrameDecoder(maximumFrameBytes: maximumFrameBytes)
    }

    mutating func add(_ incoming: ByteBuffer) throws(FramingError) -> [Frame] {
        var incoming = incoming
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        guard var buffer = cumulation else { return [] }
        cumulation = nil
        var frames: [Frame] = []
        while let frame = try decoder.next(from: &buffer) { frames.append(frame) }
        if buffer.readableBytes > 0 { cumulation = buffer }
        return frames
    }
}
