import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import Synchronization

/// A primary streaming its log to one replica: it reads what the log has made durable, from where
/// the replica stands, and sends it as RECORDS frames while the connection takes them (TCP's
/// back-pressure bounds what waits in memory); with nothing to send it sends a heartbeat. Everything
/// runs on the connection's event loop; `wake` is the only call from other threads.
final class ShippingSession: @unchecked Sendable {
    let nodeID: String
    private let node: ReplicationNode
    private let wal: WriteAheadLog
    private let channel: any Channel
    /// The inbox of the connection's loop, if the server has them (``LoopWakes``).
    private let wakes: LoopWakeInbox?
    private let reader: WALTailReader
    private let epoch: UInt64
    private var lastSentMilliseconds: Int64 = 0
    private var lastInSync = false
    /// The commit mark the last frame carried: a newer one is sent at once, records or not, since the
    /// replica shows only what the mark covers.
    private var lastSentCommitLSN: UInt64 = 0
    private var closed = false
    private var heartbeat: RepeatedTask?
    /// Set while a pump is queued on the event loop, so a burst of commits queues one.
    private let pumpQueued = Atomic<Bool>(false)
    /// `closed`, for other threads.
    private let ended = Atomic<Bool>(false)
    static let frameBytes = 256 << 10

    init(nodeID: String, node: ReplicationNode, wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem,
         channel: any Channel, position: WALTailReader.Position, startAfter: UInt64, epoch: UInt64) {
        self.nodeID = nodeID
        self.node = node
        self.wal = wal
        self.channel = channel
        wakes = node.loopWakes?.inbox(for: channel.eventLoop)
        self.epoch = epoch
        self.startAfter = startAfter
        reader = WALTailReader(walDirectory: walDirectory, fileSystem: fileSystem, position: position)
    }

    /// Records at or below this the replica already holds.
    private let startAfter: UInt64

    func start() {
        channel.eventLoop.assertInEventLoop()
        let interval = TimeAmount.milliseconds(node.configuration.heartbeatMilliseconds)
        heartbeat = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.sendHeartbeatIfQuiet()
        }
        pump()
    }

    /// The log committed more (any thread).
    func wake() {
        guard !ended.load(ordering: .acquiring), !pumpQueued.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let pumpAgain: @Sendable () -> Void = { [self] in
            pumpQueued.store(false, ordering: .releasing)
            pump()
        }
        if let wakes { wakes.post([pumpAgain]) } else { channel.eventLoop.execute(pumpAgain) }
    }


    var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    func close() {
        guard !ended.load(ordering: .acquiring) else { return }
        channel.eventLoop.execute { [self] in
            stop()
            channel.close(promise: nil)
        }
    }

    func stop() {
        closed = true
        ended.store(true, ordering: .releasing)
        heartbeat?.cancel()
        heartbeat = nil
        reader.close()
    }

    /// Sends what the log has committed while the connection takes it.
    func pump() {
        channel.eventLoop.assertInEventLoop()
        while !closed && channel.isWritable {
            let read: (bytes: [UInt8], records: Int, batch: WALTailReader.Batch)
            do {
                read = try reader.readRaw(wal.shippingTail, after: startAfter, isFailed: wal.hasFailed, maximumBytes: Self.frameBytes)
            } catch {
                let message: String
                switch error {
                case .segmentGone(let first):
                    message = "the primary's WAL segment \(first) holding the replica's next record was removed"
                case .storage(let reason):
                    message = "the primary could not read its WAL: \(reason)"
                }
                fail(LearnStoreError(.logTruncated, message))
                return
            }
            if read.records > 0 {
                send(records: read.bytes)
                node.metrics?.recordsShipped.increment(by: read.records)
                node.metrics?.bytesShipped.increment(by: read.bytes.count)
            }
            if read.batch.caughtUp { break }
        }
        if !closed, channel.isWritable, node.streamStatus(for: nodeID).commitLSN > lastSentCommitLSN { send(records: []) }
    }

    private func sendHeartbeatIfQuiet() {
        guard !closed else { return }
        let status = node.streamStatus(for: nodeID)
        let now = node.clock.now().milliseconds
        if now - lastSentMilliseconds >= node.configuration.heartbeatMilliseconds || status.inSync != lastInSync {
            send(records: [])
        }
        pump()
    }

    private func send(records: [UInt8]) {
        let status = node.streamStatus(for: nodeID)
        guard status.role == .primary, status.epoch == epoch else {
            fail(LearnStoreError(.fenced, "this node is no longer the primary of epoch \(epoch)"))
            return
        }
        lastInSync = status.inSync
        lastSentCommitLSN = status.commitLSN
        lastSentMilliseconds = node.clock.now().milliseconds
        let frame = ReplicationRecords(
            epoch: epoch, commitLSN: status.commitLSN, inSync: status.inSync, throughLSN: max(reader.position.lastLSN, startAfter), records: records)
        var writer = ByteWriter(capacity: records.count + 64)
        writer.writeFrame(FrameHeader(opcode: ReplicationOpcode.records, requestID: 0)) { ReplicationMessages.encode(frame, into: &$0) }
        channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
    }

    private func fail(_ error: LearnStoreError) {
        var writer = ByteWriter(capacity: 128)
        writer.writeErrorFrame(opcode: ReplicationOpcode.records, requestID: 0, error)
        channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes), promise: nil)
        stop()
        channel.close(promise: nil)
    }
}
