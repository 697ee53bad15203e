import Dispatch
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore

/// A primary sending a replica a copy of its files (CATCH_UP): the replica's next record is no
/// longer in this node's log. The files are chosen and read off the event loops, and each message
/// waits for the previous one to reach the socket, so a slow replica holds at most one chunk here
/// and never holds back writes.
struct CatchUpSender: Sendable {
    static let chunkBytes = 256 << 10

    let node: ReplicationNode
    let replica: String
    let channel: any Channel
    let requestID: UInt32
    let epoch: UInt64
    let epochs: [EpochStart]

    func start(wal: WriteAheadLog, data: DataDirectory, fileSystem: any FileSystem) {
        Task.detached {
            let started = ContinuousClock.now
            do throws(LearnStoreError) {
                let source = try await Self.open(wal: wal, data: data, fileSystem: fileSystem)
                defer { source.close() }
                node.logger.notice("sending a catch-up copy", metadata: [
                    "replica": "\(replica)", "through_lsn": "\(source.throughLSN)", "files": "\(source.files.count)", "bytes": "\(source.totalBytes)",
                ])
                try await send(source)
                node.logger.notice("sent a catch-up copy", metadata: [
                    "replica": "\(replica)", "bytes": "\(source.totalBytes)", "seconds": "\(ContinuousClock.now - started)",
                ])
            } catch {
                node.logger.warning("catch-up copy not sent", metadata: ["replica": "\(replica)", "error": "\(error)"])
                var writer = ByteWriter(capacity: 128)
                writer.writeErrorFrame(opcode: ReplicationOpcode.catchUp, requestID: requestID, error)
                try? await channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes))
            }
            try? await channel.close()
        }
    }

    private static func open(wal: WriteAheadLog, data: DataDirectory, fileSystem: any FileSystem) async throws(LearnStoreError) -> CatchUpSource {
        let result: Result<CatchUpSource, LearnStoreError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Result { () throws(LearnStoreError) in try CatchUpSource.open(wal: wal, data: data, fileSystem: fileSystem) })
            }
        }
        return try result.get()
    }

    private func send(_ source: CatchUpSource) async throws(LearnStoreError) {
        try await write(.begin(epoch: epoch, epochs: epochs, throughLSN: source.throughLSN, files: UInt32(source.files.count), bytes: UInt64(source.totalBytes)))
        for file in source.files {
            try await write(.file(path: file.path, size: UInt64(file.size), sentBytes: UInt64(file.sentBytes)))
            var offset = 0
            while offset < file.sentBytes {
                let count = min(Self.chunkBytes, file.sentBytes - offset)
                let bytes: [UInt8]
                do { bytes = try file.file.read(count: count, at: offset) } catch { throw error.learnStoreError }
                guard bytes.count == count else {
                    throw LearnStoreError(.storageUnavailable, "\(file.path) ended at \(offset + bytes.count) bytes, before \(file.sentBytes)")
                }
                try await write(.data(bytes))
                node.metrics?.catchUpBytesSent.increment(by: count)
                offset += count
            }
        }
        try await write(.end)
    }

    private func write(_ message: CatchUpMessage) async throws(LearnStoreError) {
        guard node.role == .primary, node.epoch == epoch else {
            throw LearnStoreError(.fenced, "this node is no longer the primary of epoch \(epoch)")
        }
        var writer = ByteWriter(capacity: 64)
        writer.writeFrame(FrameHeader(opcode: ReplicationOpcode.catchUp, requestID: requestID)) { message.encode(into: &$0) }
        do { try await channel.writeAndFlush(channel.allocator.buffer(bytes: writer.bytes)) } catch {
            throw LearnStoreError(.connectionFailed, "replica \(replica) closed the connection")
        }
    }
}
