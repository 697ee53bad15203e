import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol

/// Runs a SUBSCRIBE: checks it, finds where in the WAL the subscriber's next change is, and registers
/// the subscription. On success the connection becomes a feed connection (``FeedConnectionHandler``).
enum FeedSubscribe {
    struct Opened: Sendable {
        var response: [UInt8]
        var source: FeedSource
        var credit: UInt32
    }

    static func open(_ frame: Frame, session: Session, server: ServerContext) async -> Result<Opened, FeedFailure> {
        do throws(FeedFailure) {
            return .success(try await openChecked(frame, session: session, server: server))
        } catch {
            return .failure(error)
        }
    }

    private static func openChecked(_ frame: Frame, session: Session, server: ServerContext) async throws(FeedFailure) -> Opened {
        let header = frame.header
        func fail(_ code: LearnStoreError.Code, _ message: String, field: String? = nil) -> FeedFailure {
            FeedFailure(LearnStoreError(code, message, field: field))
        }
        if header.flags != 0 { throw fail(.badFrame, "request flags must be 0") }
        if server.runtime.isShuttingDown { throw fail(.shuttingDown, "the server is shutting down") }
        if server.clock.now() >= session.acceptedUntil {
            throw fail(.tokenExpired, "the token expired at \(session.expiresAt); send AUTH with a new token")
        }
        if server.runtime.isLoading { throw fail(.loading, "the server is recovering its data; retry shortly") }
        let request: SubscribeRequest
        do {
            request = try RequestExecutor.decode(frame) { (r) throws(DecodeError) in try FeedMessages.decodeSubscribe(from: &r) }
        } catch {
            throw FeedFailure(error)
        }
        let scopes = session.identity.scopes
        guard scopes.contains(.recordsRead) || scopes.contains(.outcomesRead) else {
            throw fail(.forbidden, "a subscription needs the scope 'records:read' or 'outcomes:read'")
        }
        guard let log = server.feed.log else {
            throw fail(.storageUnavailable, "this server keeps no write-ahead log, so it has no change feed")
        }
        let tenantID = session.identity.tenantID
        let tenant = server.registry.tenant(tenantID)
        let recent = server.feed.recentChanges(for: tenantID, wal: log.wal)
        do {
            let opened = try await open(request, frame.header, tenant: tenant, recent: recent, log: log, session: session, server: server)
            server.feed.openingEnded(recent, failed: false)
            return opened
        } catch {
            server.feed.openingEnded(recent, failed: true)
            throw error
        }
    }

    private static func open(
        _ request: SubscribeRequest, _ header: FrameHeader, tenant: TenantActor, recent: RecentChanges,
        log: (wal: WriteAheadLog, walDirectory: String, fileSystem: any FileSystem), session: Session, server: ServerContext
    ) async throws(FeedFailure) -> Opened {
        func fail(_ code: LearnStoreError.Code, _ message: String, field: String? = nil) -> FeedFailure {
            FeedFailure(LearnStoreError(code, message, field: field))
        }
        let tenantID = tenant.tenantID
        let (sequence, lastWrite) = await tenant.attachChangeTap(recent)
        let wal = log.wal
        let committed = (try? await offload { wal.waitUntilCommitted(lastWrite) }) ?? false
        guard committed else {
            if wal.acknowledgementsStopped != nil {
                throw fail(.notPrimary, "this node stopped being the primary before tenant \(tenantID)'s last write was acknowledged; subscribe on the new primary or a replica")
            }
            throw fail(.storageUnavailable, "the tenant's last write is not durable yet; the WAL is failing")
        }
        let tail = wal.tail
        let after: UInt64
        switch request.start {
        case .now:
            after = sequence
        case .after(let asked):
            guard asked <= sequence else {
                // A replica may not have the primary's newest changes yet (a subscriber that moves
                // there after a failover): a later attempt, or the primary, can serve it.
                if wal.clientWriteRefusal != nil {
                    throw fail(.notYet, "tenant \(tenantID) is at sequence \(sequence) on this replica, not yet \(asked); retry, or subscribe on the primary")
                }
                throw fail(.validation, "sequence \(asked) is ahead of tenant \(tenantID)'s newest committed sequence \(sequence)", field: "sequence")
            }
            after = asked
        }
        let position: WALTailReader.Position
        switch tail.start(tenant: tenantID, after: after, tenantSequence: sequence) {
        case .segment(let first), .live(let first):
            position = WALTailReader.Position(segmentFirstLSN: first)
        case .truncated(let oldest):
            throw .truncated("the changes of tenant \(tenantID) after sequence \(after) are no longer kept", oldest: oldest)
        }
        var translator = FeedTranslator(tenantID: tenantID, caller: session.identity, after: after)
        if after < sequence {
            // Whatever took the sequences up to `sequence` was logged at or before `lastWrite`, except
            // restores, which are given once the reader has passed it.
            translator.restored(sequence: sequence, afterLSN: lastWrite, at: server.clock.now())
        }
        let source = FeedSource(
            tenantID: tenantID, wal: wal, walDirectory: log.walDirectory, fileSystem: log.fileSystem, start: position, translator: translator, recent: recent,
            statistics: server.feed.statistics)
        try server.feed.register(source)
        let batchLimit = Int(FeedMessages.maximumBatchChanges)
        let response = SubscribeResponse(
            afterSequence: after, tenantSequence: sequence, oldestSequence: tail.oldestSequence(tenant: tenantID, tenantSequence: sequence),
            maximumBatchChanges: UInt32(batchLimit))
        var writer = ByteWriter(capacity: 64)
        writer.writeFrame(FrameHeader(opcode: header.opcode, requestID: header.requestID)) { FeedMessages.encodeSubscribeResponse(response, into: &$0) }
        return Opened(response: writer.bytes, source: source, credit: request.credit)
    }
}
