import FuzzSupport
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreServer
import Logging
import NIOCore
import NIOEmbedded

/// A whole server session in process: a HELLO and an AUTH with a valid token, then the input as the
/// rest of the byte stream. Frames are split by the real ``FrameDecoder``, routed by the real
/// ``HandshakeStateMachine`` (HELLO, AUTH and re-AUTH through the real ``TokenVerifier``), and run in
/// batches by ``RequestExecutor`` on a real ``TenantActor`` entered as the connection handler enters it,
/// with every optional feature on (Canvas outcomes, admin IMPORT). The tenant starts each run from the
/// same few records and outcome rows, so requests naming them find something.
///
/// Checked beyond "no trap": every response batch splits into exactly one frame per request with its
/// request id, error bodies and the common response payloads decode as a client decodes them, every
/// write the tenant logs survives the WAL record codec, replaying the logged writes onto the start
/// state gives the tenant's sequence and record counts, and the final state survives a snapshot.
///
/// SNAPSHOT and RESTORE_TENANT run outside the batch path (`AdminExecutor`, with files) and are dropped
/// here; the `ConnectionHandler` itself is internal to the server module and not driven directly.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    var input = FuzzInput(data, count)
    var stream = SessionRun.prologue
    stream.writeBytes(input.rest())
    var session = SessionRun()
    session.run(&stream)
    return 0
}

struct SessionRun {
    static let configuration: ServerConfiguration = {
        var configuration = ServerConfiguration()
        configuration.authentication.hmacSecrets = [HS256.secret]
        configuration.limits.maximumBatch = 100
        configuration.limits.idempotencyKeys = 64
        configuration.features = [.outcomes, .admin]
        return configuration
    }()
    static let start = Timestamp(milliseconds: 1_767_225_600_000)  // 2026-01-01
    static let clock = ManualClock(start)
    static let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    static let context: ServerContext = runBlocking {
        do {
            return ServerContext(
                configuration: configuration, registry: TenantRegistry(), verifier: try await TokenVerifier(configuration: configuration.authentication),
                metrics: ServerMetrics(), commits: ImmediateCommitTracker(), runtime: ServerRuntimeState(loading: false), clock: clock,
                logger: quiet, placement: TenantPlacement(group: EmbeddedEventLoop()), info: { _ in #"{"server":"learnstore"}"# })
        } catch {
            fatalError("cannot configure the server: \(error)")
        }
    }
    static let person = UUID16("0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4")!
    static let token = HS256.token(
        header: Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8),
        payload: Array(#"{"tenant_id":"fuzz","sub":"0b6d8a3e-2f41-4c7a-8e15-3d9c00a1b2c4","scope":"records:read records:write outcomes:read outcomes:write admin","exp":1893456000}"#.utf8))
    /// The identity of ``token``, verified once: re-AUTH with the same token skips the verifier.
    static let identity: VerifiedToken = runBlocking {
        do throws(LearnStoreError) { return try await context.verifier.verify(token, now: start) } catch { fatalError("the fixed token does not verify: \(error)") }
    }
    /// HELLO and AUTH frames, in front of every input.
    static let prologue: ByteBuffer = {
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: Opcode.hello, requestID: 1)) { HelloRequest(clientName: "fuzz").encode(into: &$0) }
        writer.writeFrame(FrameHeader(opcode: Opcode.auth, requestID: 2)) { AuthRequest(token: token).encode(into: &$0) }
        return ByteBuffer(bytes: writer.bytes)
    }()
    /// Four records with fixed ids (`lr_…` of 1704067100001…4 ms) and a few outcome rows.
    static let baseState: TenantState = {
        let tenant = TenantActor(state: TenantState(tenantID: "fuzz", limits: limits), log: DiscardingLog(), clock: clock,
                                 executor: TenantExecutor { $0() })
        var records: [LearningRecord] = []
        for index in 1...4 {
            let milliseconds: Int64 = 1_704_067_100_000 + Int64(index)
            let owner = index % 2 == 0 ? person : UUID16(high: 1, low: UInt64(index))
            let created = Timestamp(milliseconds: milliseconds)
            let id = RecordID(milliseconds: UInt64(milliseconds), randomHigh: 0, randomLow: UInt64(index))
            var record = LearningRecord(id: id, tenantID: "fuzz", createdAt: created, updatedAt: created, personID: owner)
            record.title = "Course \(index)"
            record.provider = "AWS"
            record.completedAt = Timestamp(milliseconds: 1_704_067_000_000)
            record.score = Double(index * 20)
            record.passed = index > 2
            record.certificationRef = index == 3 ? "CERT-3" : nil
            records.append(record)
        }
        let events = [
            #"{"metadata":{"event_name":"learning_outcome_created","event_time":"2024-01-01T00:00:00Z"},"body":{"learning_outcome_id":"1","context_type":"Course","context_id":"1","title":"T","calculation_method":"highest","workflow_state":"active","rubric_criterion":{"mastery_points":2,"points_possible":3,"ratings":[{"description":"A","points":3},{"description":"B","points":0}]}}}"#,
            #"{"metadata":{"event_name":"learning_outcome_result_created","event_time":"2024-01-01T00:00:00Z"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3,"result_id":"7","context_type":"Course","context_id":"1","assessed_at":"2024-01-01T00:00:00Z"}}"#,
        ].map { Array($0.utf8) }
        return tenant.withExclusiveAccess { tenant in
            _ = try? tenant.importRecords(records, caller: identity.identity)
            _ = try? tenant.ingestOutcomes(events, caller: identity.identity)
            return tenant.state
        }
    }()
    static let checkedBase: Void = SnapshotCheck.roundTrip(baseState)
    static let limits = EngineLimits(maximumBatch: configuration.limits.maximumBatch, idempotencyKeys: configuration.limits.idempotencyKeys)
    static let maximumBatch = 8

    let decoder = FrameDecoder(maximumFrameBytes: SessionRun.configuration.maximumFrameBytes)
    let log = CheckingLog()
    var machine = HandshakeStateMachine()
    var batch: [Frame] = []
    var failedAuthentications = 0

    mutating func run(_ stream: inout ByteBuffer) {
        Self.clock.set(Self.start)
        _ = Self.checkedBase
        let tenant = TenantActor(state: Self.baseState, log: log, clock: Self.clock, executor: TenantExecutor { $0() })
        defer { finish(tenant) }
        while true {
            let frame: Frame
            do {
                guard let next = try decoder.next(from: &stream) else { return }
                frame = next
            } catch {
                return  // the connection answers the framing error and closes
            }
            switch machine.frameReceived(opcode: frame.header.opcode) {
            case .ignore:
                return
            case .hello:
                guard frame.header.flags == 0,
                      let request = try? frame.readPayload({ (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }),
                      case .success = machine.helloReceived(request)
                else { return }
            case .authenticate:
                dispatch(tenant)
                guard authenticate(frame) else { return }
            case .answerLocally, .reject(_, close: false):
                continue
            case .reject(_, close: true):
                return
            case .dispatch:
                if frame.header.opcode == Opcode.adminSnapshot || frame.header.opcode == Opcode.adminRestoreTenant { continue }
                batch.append(frame)
                if batch.count >= Self.maximumBatch { dispatch(tenant) }
            }
        }
    }

    /// Verifies an AUTH frame's token; false when the connection closes.
    mutating func authenticate(_ frame: Frame) -> Bool {
        let result: Result<VerifiedToken, LearnStoreError>
        if frame.header.flags != 0 {
            result = .failure(LearnStoreError(.badFrame, "AUTH: request flags must be 0"))
        } else if let token = try? frame.readPayload({ (r) throws(DecodeError) in try AuthRequest.decode(from: &r) }).token {
            if token == Self.token {
                result = .success(Self.identity)
            } else {
                let verifier = Self.context.verifier
                let now = Self.clock.now()
                result = runBlocking {
                    do throws(LearnStoreError) { return .success(try await verifier.verify(token, now: now)) } catch { return .failure(error) }
                }
            }
        } else {
            result = .failure(LearnStoreError(.badFrame, "AUTH payload"))
        }
        let action: HandshakeStateMachine.AuthAction
        switch result {
        case .success(let token): action = machine.authenticationSucceeded(token)
        case .failure(let error): action = machine.authenticationFailed(error)
        }
        if case .reject(_, close: true) = action { return false }
        return true
    }

    mutating func dispatch(_ tenant: TenantActor) {
        guard !batch.isEmpty, let session = machine.session else { return }
        let frames = batch
        batch.removeAll(keepingCapacity: true)
        let environment = Self.context.environment
        let result = tenant.withExclusiveAccess { tenant in
            RequestExecutor.execute(frames, session: session, tenant: tenant, environment: environment)
        }
        ResponseCheck.check(result, for: frames)
    }

    /// Replays what the tenant logged onto the state it started from, as recovery would, and snapshots
    /// the final state (only when something was written: the start state is checked once).
    func finish(_ tenant: TenantActor) {
        let entries = log.entries
        guard !entries.isEmpty else { return }
        let state = tenant.withExclusiveAccess { $0.state }
        var replayed = Self.baseState
        for entry in entries { replayed.apply(entry.mutations, sequence: entry.sequence) }
        guard replayed.sequence == state.sequence, replayed.store.liveCount == state.store.liveCount,
              replayed.store.deletedCount == state.store.deletedCount
        else {
            fuzzFailure("replaying the log gives sequence \(replayed.sequence), \(replayed.store.liveCount)/\(replayed.store.deletedCount) records; "
                        + "the tenant has \(state.sequence), \(state.store.liveCount)/\(state.store.deletedCount)")
        }
        SnapshotCheck.roundTrip(state)
    }
}
