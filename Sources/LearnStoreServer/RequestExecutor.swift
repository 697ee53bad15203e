import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// What one response in a batch depends on, and where its bytes are: if the write it observed
/// fails to become durable, the response is replaced by a STORAGE_UNAVAILABLE error.
public struct ResponseMeta: Sendable {
    public var requestID: UInt32
    public var opcode: UInt8
    public var lsn: UInt64
    public var range: Range<Int>
}

/// The encoded responses of one batch of requests, in request order.
public struct BatchResult: Sendable {
    public var bytes: [UInt8]
    public var responses: [ResponseMeta]
    public var maximumLSN: UInt64
    public var counts: OpcodeCounts
    public var errors: [(UInt8, LearnStoreError.Code)]
}

/// Requests of a batch by opcode. A batch is nearly always of one opcode: that one is kept inline, so
/// counting allocates nothing (a dictionary per batch showed in the profile of unpipelined gets).
public struct OpcodeCounts: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    private var first: (opcode: UInt8, count: Int)?
    private var others: [UInt8: Int] = [:]

    public init(dictionaryLiteral elements: (UInt8, Int)...) {
        for (opcode, count) in elements { add(opcode, count) }
    }

    public mutating func add(_ opcode: UInt8, _ count: Int = 1) {
        if first == nil { first = (opcode, 0) }
        if first!.opcode == opcode { first!.count += count } else { others[opcode, default: 0] += count }
    }

    public func makeIterator() -> Iterator { Iterator(first: first, rest: others.makeIterator()) }

    public struct Iterator: IteratorProtocol {
        var first: (opcode: UInt8, count: Int)?
        var rest: Dictionary<UInt8, Int>.Iterator

        public mutating func next() -> (opcode: UInt8, count: Int)? {
            if let taken = first {
                first = nil
                return taken
            }
            return rest.next().map { (opcode: $0.key, count: $0.value) }
        }
    }
}

/// Shared, read-only context the executor needs besides the tenant. A class: every event loop hands it
/// to every batch, and a struct of these references would be retained and released field by field
/// each time, on cache lines all the loops share.
public final class ExecutionEnvironment: Sendable {
    public let runtime: ServerRuntimeState
    public let clock: any EngineClock
    public let limits: EngineLimits
    /// Optional features this server offers; opcodes of a feature it does not offer are unknown.
    public let features: ProtocolFeatures
    /// The INFO document (built on demand): server-wide figures when the argument is true (an admin
    /// caller), otherwise only the server's identity and state.
    public let info: @Sendable (_ serverWide: Bool) -> String
    /// Where the primary and the nodes are: TOPOLOGY, and the target of MOVED.
    public let topology: TopologyBoard

    public init(runtime: ServerRuntimeState, clock: any EngineClock, limits: EngineLimits, features: ProtocolFeatures,
                info: @escaping @Sendable (_ serverWide: Bool) -> String, topology: TopologyBoard = TopologyBoard()) {
        self.runtime = runtime
        self.clock = clock
        self.limits = limits
        self.features = features
        self.info = info
        self.topology = topology
    }
}

/// Runs a batch of request frames on the tenant's executor and encodes their responses. Pure
/// request logic: decoding, scope and session checks, the engine call and the response encoding.
public enum RequestExecutor {
    /// Runs `frames` in order until their responses reach `outputBudget` bytes (at least one frame
    /// runs); `responses.count` says how many ran, and the caller keeps the rest for later.
    /// `prepared` holds payloads parsed before the lock (``RequestPreparation``), by frame position;
    /// a frame without one is parsed here.
    public static func execute(
        _ frames: [Frame], prepared: [Int: PreparedPayload]? = nil, session: Session, tenant: isolated TenantActor,
        environment: ExecutionEnvironment, outputBudget: Int = .max
    ) -> BatchResult {
        // A record is a few hundred bytes, a list page ten of them: room for either at once spares
        // the growths (each an allocation and a copy).
        var writer = ByteWriter(capacity: max(4096, frames.count * 512))
        var responses: [ResponseMeta] = []
        responses.reserveCapacity(frames.count)
        var counts = OpcodeCounts()
        var errors: [(UInt8, LearnStoreError.Code)] = []
        let now = environment.clock.now()
        let loading = environment.runtime.isLoading
        let shuttingDown = environment.runtime.isShuttingDown
        if frames.count > 1 && !loading { prefetchGets(frames, tenant: tenant) }
        var maximumLSN: UInt64 = 0
        for (index, frame) in frames.enumerated() {
            if writer.count >= outputBudget { break }
            let header = frame.header
            var observed: UInt64?
            counts.add(header.opcode)
            let start = writer.count
            do throws(LearnStoreError) {
                if header.flags != 0 { throw LearnStoreError(.badFrame, "request flags must be 0") }
                if shuttingDown { throw LearnStoreError(.shuttingDown, "the server is shutting down") }
                if now >= session.acceptedUntil, header.opcode != Opcode.ping {
                    throw LearnStoreError(.tokenExpired, "the token expired at \(session.expiresAt); send AUTH with a new token")
                }
                let isData = header.opcode >= 0x10
                if loading && isData { throw LearnStoreError(.loading, "the server is recovering its data; retry shortly") }
                if isData && tenant.releasedToAnotherGroup { throw movedAway(tenant.tenantID) }
                try run(frame, prepared: prepared?[index], session: session, tenant: tenant, environment: environment, writer: &writer, observed: &observed)
            } catch {
                writer.truncate(to: start)
                // These refusals say nothing of the tenant's data: they need not wait for its writes
                // to be acknowledged (on a fenced primary, nothing more will be).
                if Self.refusalsIndependentOfData.contains(error.code) { observed = 0 }
                if error.code == .notPrimary, let target = environment.topology.moved() {
                    writer.writeFrame(FrameHeader(opcode: header.opcode, flags: 1, requestID: header.requestID)) {
                        ErrorBody.encodeMoved("\(error.message); the primary is at \(target.address)", epoch: target.epoch, address: target.address, into: &$0)
                    }
                    errors.append((header.opcode, .moved))
                } else if error.code == .moved, case .elsewhere(let other) = environment.topology.route(tenant: tenant.tenantID),
                    let primary = other.primary, let address = primary.address
                {
                    writer.writeFrame(FrameHeader(opcode: header.opcode, flags: 1, requestID: header.requestID)) {
                        ErrorBody.encodeMoved("\(error.message), group \(other.group); its primary is at \(address)", partition: UInt32(other.partition),
                                              epoch: primary.epoch, address: address, into: &$0)
                    }
                    errors.append((header.opcode, .moved))
                } else if error.code == .moved {
                    let refusal = environment.topology.route(tenant: tenant.tenantID) == .here
                        ? LearnStoreError(.loading, "\(error.message) and is being copied back to this one; retry shortly")
                        : LearnStoreError(.loading, "\(error.message), whose primary this node does not know yet; connect again (AUTH answers MOVED)")
                    writer.writeErrorFrame(opcode: header.opcode, requestID: header.requestID, refusal)
                    errors.append((header.opcode, .loading))
                } else {
                    writer.writeErrorFrame(opcode: header.opcode, requestID: header.requestID, error)
                    errors.append((header.opcode, error.code))
                }
            }
            let lsn = observed ?? tenant.observedLSN
            maximumLSN = max(maximumLSN, lsn)
            responses.append(ResponseMeta(requestID: header.requestID, opcode: header.opcode, lsn: lsn, range: start..<writer.count))
        }
        // Refusals (a move's LOADING, MOVED, an expired token) are not load the tenant's data puts on the node.
        tenant.countRequests(responses.count - errors.count)
        return BatchResult(bytes: writer.bytes, responses: responses, maximumLSN: maximumLSN, counts: counts, errors: errors)
    }

    static let refusalsIndependentOfData: Set<LearnStoreError.Code> = [.badFrame, .shuttingDown, .tokenExpired, .loading, .notPrimary, .moved]

    /// A request on a connection opened before the tenant's partition moved to another group, whose
    /// release has emptied the tenant here.
    static func movedAway(_ tenantID: String) -> LearnStoreError {
        LearnStoreError(.moved, "tenant \(tenantID)'s partition moved to another group")
    }

    /// Starts the memory loads of every GET in the batch (see `TenantActor.prefetchForGets`).
    static func prefetchGets(_ frames: [Frame], tenant: isolated TenantActor) {
        var ids: [RecordID] = []
        for frame in frames where frame.header.opcode == Opcode.get {
            if let id = try? frame.readPayload({ (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }) {
                if ids.isEmpty { ids.reserveCapacity(frames.count) }
                ids.append(id)
            }
        }
        if ids.count > 1 { tenant.prefetchForGets(ids) }
    }

    static func decode<T>(_ frame: Frame, _ body: (inout ByteReader) throws(DecodeError) -> T) throws(LearnStoreError) -> T {
        do {
            return try frame.readPayload(body)
        } catch {
            throw LearnStoreError(.badFrame, "\(Opcode.name(frame.header.opcode)) payload: \(error)")
        }
    }

    /// `observed`: set by a request whose answer depends on fewer of the tenant's writes not yet
    /// durable than all of them (a GET: those that touched its record); nil means all.
    static func run(
        _ frame: Frame, prepared: PreparedPayload?, session: Session, tenant: isolated TenantActor, environment: ExecutionEnvironment,
        writer: inout ByteWriter, observed: inout UInt64?
    ) throws(LearnStoreError) {
        let header = frame.header
        let caller = session.identity
        let response = FrameHeader(opcode: header.opcode, requestID: header.requestID)
        let lengthAt = writer.count
        writer.writeFrame(response) { _ in }
        switch header.opcode {
        case Opcode.get:
            let id = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }
            observed = tenant.observedLSN(ofRecord: id)
            try tenant.encodeGet(id, caller: caller, into: &writer)
        case Opcode.list:
            let (query, cursorBytes) = try decode(frame) { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }
            var fullQuery = query
            // The scope answers before the cursor's validation, as for every other request (PROTOCOL 6.3).
            try caller.require(.recordsRead)
            if let cursorBytes { fullQuery.cursor = try ListCursor(bytes: cursorBytes) }
            try tenant.encodeList(fullQuery, caller: caller, into: &writer)
        case Opcode.create:
            let (body, key) = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) }
            let write = try tenant.create(body, caller: caller, idempotencyKey: key)
            RecordMessages.encodeWriteResponse(sequence: write.sequence, replayed: write.replayed, write.result, into: &writer)
        case Opcode.createBatch:
            let limit = environment.limits.maximumBatch
            let (bodies, key) = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: limit) }
            let write = try tenant.createBatch(bodies, caller: caller, idempotencyKey: key)
            RecordMessages.encodeBatchResponse(sequence: write.sequence, replayed: write.replayed, write.result, into: &writer)
        case Opcode.patch:
            let (id, body, expected) = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) }
            let write = try tenant.patch(id, body, expectedUpdatedAt: expected, caller: caller)
            RecordMessages.encodeWriteResponse(sequence: write.sequence, replayed: nil, write.result, into: &writer)
        case Opcode.delete, Opcode.restore:
            let id = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }
            let write = header.opcode == Opcode.delete ? try tenant.delete(id, caller: caller) : try tenant.restore(id, caller: caller)
            RecordMessages.encodeWriteResponse(sequence: write.sequence, replayed: nil, write.result, into: &writer)
        case Opcode.purgePerson:
            let (person, dryRun) = try decode(frame) { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) }
            let write = try tenant.purgePerson(person, dryRun: dryRun, caller: caller)
            RecordMessages.encodePurgeResponse(sequence: write.sequence, count: write.result, into: &writer)
        case Opcode.stats:
            try decode(frame) { (r) throws(DecodeError) in try r.expectEnd() }
            let stats = try tenant.stats(caller: caller)
            writer.writeBytes(Array(StatsJSON.json(stats).serialized.utf8))
        case Opcode.ping:
            guard frame.payload.readableBytes <= 64 else { throw LearnStoreError(.badFrame, "a PING payload is at most 64 bytes") }
            writer.writeBytes(frame.payload.readableBytesView)
        case Opcode.info:
            guard frame.payload.readableBytes == 0 else { throw LearnStoreError(.badFrame, "an INFO request has an empty payload") }
            writer.writeBytes(Array(environment.info(caller.scopes.contains(.admin)).utf8))
        case Opcode.topology:
            guard frame.payload.readableBytes == 0 else { throw LearnStoreError(.badFrame, "a TOPOLOGY request has an empty payload") }
            writer.writeBytes(Array(environment.topology.json().serialized.utf8))
        case Opcode.hello:
            throw LearnStoreError(.badFrame, "HELLO may be sent only once")
        case Opcode.adminImport where environment.features.contains(.admin):
            try runImport(prepared ?? RequestPreparation.importBatch(frame, limits: environment.limits), caller: caller, tenant: tenant, writer: &writer)
        default:
            guard environment.features.contains(.outcomes),
                  try runOutcome(frame, prepared: prepared, caller: caller, tenant: tenant, environment: environment, writer: &writer)
            else {
                throw LearnStoreError(.unknownOpcode, "opcode 0x\(String(header.opcode, radix: 16)) is not defined in protocol version \(session.protocolVersion)")
            }
        }
        writer.setU32(UInt32(writer.count - lengthAt - 4), at: lengthAt)
    }
}

/// The STATS document.
enum StatsJSON {
    static func json(_ stats: TenantStats) -> JSONValue {
        func number(_ value: Int) -> JSONValue { .number(String(value)) }
        return .object([
            ("tenant_id", .string(stats.tenantID)),
            ("sequence", .number(String(stats.sequence))),
            ("records", number(stats.liveRecords)),
            ("deleted_records", number(stats.deletedRecords)),
            ("purged_slots", number(stats.purgedSlots)),
            ("persons", number(stats.persons)),
            ("idempotency_keys", number(stats.idempotencyKeys)),
            ("index_entries", .object(stats.indexEntries.sorted { $0.key < $1.key }.map { ($0.key, number($0.value)) })),
            ("record_bytes", number(stats.recordBytes)),
            ("index_bytes", number(stats.indexBytes)),
            ("estimated_bytes", number(stats.estimatedBytes)),
            ("outcome_entities", number(stats.outcomeEntities)),
            ("outcome_results", number(stats.outcomeResults)),
        ])
    }
}
