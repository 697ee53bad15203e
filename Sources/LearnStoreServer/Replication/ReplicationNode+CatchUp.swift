import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore

extension ReplicationNode {
    /// The longest the primary may stay silent during a copy.
    static let catchUpSilenceLimit = TimeAmount.seconds(30)

    /// Receives a copy of the primary at `address` into the staging directory and installs it.
    /// Returns whether the node's data is now the copy; throws only if a complete copy could not be
    /// installed (the node must not start on half of it; the next start installs it again).
    func copyPrimary(_ address: String, into directory: DataDirectory, request: [UInt8]) async throws(LearnStoreError) -> Bool {
        var writer: CatchUpWriter?
        do throws(LearnStoreError) {
            let connection = try await NodeConnection.open(address, credential: credential, nodeID: configuration.nodeID, group: group)
            defer { connection.close() }
            guard connection.auth.role == .primary, connection.auth.epoch >= epoch else {
                throw LearnStoreError(.fenced, "node \(connection.peerNodeID) is no longer a primary of epoch \(epoch) or later")
            }
            connection.send(opcode: ReplicationOpcode.catchUp, requestID: 4, payload: request)
            let receiving = try CatchUpWriter(data: directory, fileSystem: fileSystem)
            writer = receiving
            try await receive(from: connection, into: receiving)
            writer = nil
        } catch {
            writer?.abandon()
            state.withLock { $0.catchUp = nil }
            logger.error("catch-up copy failed; the node keeps its data", metadata: ["node": "\(address)", "error": "\(error)"])
            return false
        }
        state.withLock { $0.catchUp = nil }
        try installStagedCopy(directory)
        return true
    }

    private func receive(from connection: NodeConnection, into writer: CatchUpWriter) async throws(LearnStoreError) {
        var history: EpochHistory?
        var announcedBytes = 0
        var reportedTenth = 0
        while true {
            let frame = try await connection.next(timeout: Self.catchUpSilenceLimit)
            guard frame.header.opcode == ReplicationOpcode.catchUp else {
                throw LearnStoreError(.protocolViolation, "opcode 0x\(String(frame.header.opcode, radix: 16)) during a catch-up copy")
            }
            let message: CatchUpMessage
            do { message = try frame.readPayload { (r) throws(DecodeError) in try CatchUpMessage.decode(from: &r) } } catch {
                throw LearnStoreError(.protocolViolation, "CATCH_UP: \(error)")
            }
            switch message {
            case .begin(let primaryEpoch, let epochs, let through, let files, let bytes):
                guard history == nil else { throw CatchUpWriter.violation("a second BEGIN") }
                guard primaryEpoch >= epoch, epochs.last?.epoch == primaryEpoch else {
                    throw LearnStoreError(.fenced, "a copy of epoch \(primaryEpoch) for a node of epoch \(epoch)")
                }
                do { history = try EpochHistory(starts: epochs.map { ($0.epoch, $0.firstLSN) }) } catch {
                    throw LearnStoreError(.protocolViolation, "CATCH_UP: \(error)")
                }
                announcedBytes = Int(clamping: bytes)
                try writer.begin(files: Int(files), bytes: announcedBytes, throughLSN: through)
                state.withLock { $0.catchUp = (0, announcedBytes) }
                logger.notice("receiving a catch-up copy", metadata: ["through_lsn": "\(through)", "files": "\(files)", "bytes": "\(bytes)"])
            case .file(let path, let size, let sentBytes):
                try writer.file(path: path, size: Int(clamping: size), sentBytes: Int(clamping: sentBytes))
            case .data(let bytes):
                try writer.data(bytes)
                let received = writer.receivedBytes
                state.withLock { $0.catchUp?.received = received }
                let tenth = announcedBytes > 0 ? writer.receivedBytes * 10 / announcedBytes : 10
                if tenth > reportedTenth {
                    reportedTenth = tenth
                    logger.info("catch-up copy", metadata: ["received_bytes": "\(writer.receivedBytes)", "percent": "\(tenth * 10)"])
                }
            case .end:
                guard let history else { throw CatchUpWriter.violation("END before BEGIN") }
                try writer.finish(history: history)
                return
            }
        }
    }

    /// A complete copy is installed; one cut short is removed.
    func installStagedCopy(_ directory: DataDirectory) throws(LearnStoreError) {
        guard let installed = try CatchUpInstall.resume(directory, historyDirectory: self.directory, fileSystem) else { return }
        state.withLock { $0.history = installed.history }
        logger.notice("installed a catch-up copy of the primary's files", metadata: [
            "through_lsn": "\(installed.throughLSN)", "files": "\(installed.files)", "epoch": "\(installed.history.currentEpoch)",
        ])
    }
}
