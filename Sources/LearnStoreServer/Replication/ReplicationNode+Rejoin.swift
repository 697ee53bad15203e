import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol

extension ReplicationNode {
    /// Before recovery, a node starting as a replica asks the primary where its log may continue, and
    /// cuts what it wrote as an old primary after its epoch ended elsewhere (never an acknowledged
    /// write: those reached an in-sync replica, which the new primary's history includes). With no
    /// primary reachable it starts as it is; its follower reports a divergence found later.
    ///
    /// A primary whose log no longer holds the node's next record sends a copy of its files instead
    /// (``CatchUpInstall``), which replaces the node's data before recovery reads it.
    func prepareToFollow(_ directory: DataDirectory) async throws(LearnStoreError) {
        guard role == .replica else { return }
        try installStagedCopy(directory)
        let last: UInt64
        do {
            last = try DivergedLog.lastLSN(directory, fileSystem)
        } catch {
            logger.error("cannot read the WAL to compare it with the primary's", metadata: ["error": "\(error)"])
            return
        }
        let history = self.history
        let request = ReplicateRequest(epochs: history.starts.map { EpochStart(epoch: $0.epoch, firstLSN: $0.firstLSN) }, promised: history.promised, lastLSN: last)
        var payload = ByteWriter(capacity: 16)
        ReplicationMessages.encode(request, into: &payload)
        for address in followAddresses.withLock({ $0 }) {
            let answer: NodeClient.Answer
            do {
                answer = try await NodeClient.request(
                    address, credential: credential, nodeID: configuration.nodeID, opcode: ReplicationOpcode.replicate,
                    payload: payload.bytes, group: group)
            } catch where error.code == .logTruncated {
                logger.notice("rejoin check: the primary's log no longer holds this node's next record; copying its files", metadata: [
                    "node": "\(address)", "last_lsn": "\(last)",
                ])
                if try await copyPrimary(address, into: directory, request: payload.bytes) { return }
                continue
            } catch {
                logger.info("rejoin check: node not usable", metadata: ["node": "\(address)", "error": "\(error)"])
                continue
            }
            guard answer.auth.role == .primary, let frame = answer.reply,
                let accepted = try? frame.readPayload({ (r) throws(DecodeError) in try ReplicationMessages.decodeAccepted(from: &r) })
            else { continue }
            guard accepted.truncate else {
                logger.info("rejoin check: the log continues the primary's", metadata: ["primary": "\(answer.peerNodeID)", "last_lsn": "\(last)"])
                return
            }
            if (try? DivergedLog.canCut(directory, after: accepted.startAfter, fileSystem)) != true {
                logger.notice("rejoin: a snapshot beyond the cut is all that holds records retention removed; copying the primary's files", metadata: [
                    "primary": "\(answer.peerNodeID)", "after_lsn": "\(accepted.startAfter)",
                ])
                if try await copyPrimary(address, into: directory, request: payload.bytes) { return }
                continue
            }
            do {
                try cut(directory, after: accepted.startAfter)
                logger.notice("rejoin: cut the records an old primary wrote after its epoch ended", metadata: [
                    "primary": "\(answer.peerNodeID)", "after_lsn": "\(accepted.startAfter)", "dropped_through": "\(last)",
                ])
            } catch {
                logger.error("rejoin: cannot cut the log", metadata: ["error": "\(error)"])
            }
            return
        }
        logger.warning("rejoin check: no primary reachable; starting with the log as it is")
    }

    /// Drops every record after `lsn`, the snapshots holding any of them, and the epochs begun after it.
    private func cut(_ directory: DataDirectory, after lsn: UInt64) throws {
        let history = try DivergedLog.cut(directory, after: lsn, history: self.history, historyDirectory: self.directory, fileSystem)
        state.withLock { $0.history = history }
    }
}
