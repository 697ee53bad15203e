import LearnStoreModel
import LearnStoreProtocol
import NIOCore

/// Everything one connection has promised its client and may do next, as a value: the handshake,
/// requests read and not yet answered, responses held until their writes are durable, the AUTH or
/// admin request that must run alone, back-pressure, a framing error waiting for earlier answers,
/// and a graceful drain. The NIO handler feeds it events (a frame parsed, a batch executed, bytes
/// written, a commit, a shutdown) and carries out the ``Action``s it returns; nothing here touches a
/// socket, a clock or a tenant, so the rules are tested as transcripts (ConnectionStateMachineTests).
///
/// The order rule behind most of it: responses leave in request order. A request that runs off the
/// event loop (AUTH, SNAPSHOT, RESTORE_TENANT) starts only when every earlier one is answered, and
/// nothing after it is parsed until it is answered.
public struct ConnectionStateMachine: Sendable {
    public struct Limits: Sendable {
        /// Requests read and not yet answered; parsing pauses at this many.
        public var maximumInFlight: Int
        /// Response bytes waiting for the client past which no more requests run.
        public var outputSoftLimitBytes: Int
        /// Response bytes waiting for the client past which the connection is closed.
        public var outputHardLimitBytes: Int
        public var handshakeTimeoutSeconds: Double
        public var idleTimeoutSeconds: Double
        /// Opcodes that run off the event loop, alone (admin requests on a server that offers them).
        public var aloneOpcodes: [UInt8]
        /// How long a held reply waits for the acknowledgement of the write it depends on before it is
        /// answered with OUTCOME_UNKNOWN; 0: for ever.
        public var acknowledgementTimeoutSeconds: Double

        public init(
            maximumInFlight: Int, outputSoftLimitBytes: Int, outputHardLimitBytes: Int, handshakeTimeoutSeconds: Double,
            idleTimeoutSeconds: Double, aloneOpcodes: [UInt8], acknowledgementTimeoutSeconds: Double = 0
        ) {
            self.maximumInFlight = maximumInFlight
            self.outputSoftLimitBytes = outputSoftLimitBytes
            self.outputHardLimitBytes = outputHardLimitBytes
            self.handshakeTimeoutSeconds = handshakeTimeoutSeconds
            self.idleTimeoutSeconds = idleTimeoutSeconds
            self.aloneOpcodes = aloneOpcodes
            self.acknowledgementTimeoutSeconds = acknowledgementTimeoutSeconds
        }
    }

    /// What to do with a frame just parsed.
    public enum FrameAction: Sendable {
        /// Kept; ``nextAction(commits:outputBudget:writable:)`` says when it runs.
        case queued
        /// Decode it and answer with ``helloReceived(_:)``.
        case hello(Frame)
        /// A PING before AUTH: answer it on the connection's own loop.
        case answerPing(Frame)
        /// Answer with this error at once (counted with ``answered(count:bytes:)``); close afterwards
        /// when `close` is true.
        case reject(LearnStoreError, close: Bool)
        /// The connection is closing; drop the frame.
        case ignore
    }

    /// The next thing the handler must do; it calls ``nextAction(commits:outputBudget:writable:)``
    /// again until it gets `.none`.
    public enum Action: Sendable {
        case none
        /// Run these frames on the tenant in order, stopping once their responses reach `outputRoom`
        /// bytes; report with ``batchExecuted(_:frames:commits:)``.
        case run([Frame], Session, outputRoom: Int)
        /// Send these response bytes (already counted as answered). `storageFailures` are the opcodes
        /// of responses replaced by STORAGE_UNAVAILABLE because their write failed.
        case write([UInt8], storageFailures: [UInt8])
        /// Held responses wait for this LSN; call ``commitProgressed()`` when the tracker wakes.
        case waitForCommit(UInt64)
        /// Verify this AUTH; report with ``authenticationFinished(_:)``.
        case authenticate(Frame)
        /// Run this admin request off the loop; report with ``adminFinished(bytes:)``.
        case runAdmin(Frame, Session)
        /// Send this error (request id and opcode as given) and close the connection.
        case fail(LearnStoreError, opcode: UInt8, requestID: UInt32)
        /// More response bytes wait for the client than the hard limit allows: log and fail.
        case closeOverloaded(pendingBytes: Int, limit: Int)
        /// Every request read before the shutdown is answered: send the last SHUTTING_DOWN, close the
        /// sending side and read (and drop) until the client closes.
        case finishDrain
        /// Ask the channel for more bytes.
        case read
    }

    private enum AloneRequest: Sendable {
        case authenticate(Frame)
        case admin(Frame, Session)
    }

    public let limits: Limits
    public private(set) var handshake = HandshakeStateMachine()

    /// Requests read and not yet answered (queued to be written).
    public private(set) var inFlight = 0
    /// Frames parsed and not yet run, and their bytes (their storage stays alive until they run).
    private var batch: [Frame] = []
    public private(set) var batchBytes = 0
    /// Responses waiting for the writes they observed to be resolved, in order.
    private var held: [BatchResult] = []
    public private(set) var heldBytes = 0
    /// Held batches released so far: numbers the first one still held.
    private var heldReleased = 0
    /// The first held batch as the periodic check last saw it, and since when.
    private var oldestHeld: (number: Int, since: NIODeadline)?
    /// The first held batch has waited past the acknowledgement timeout.
    private var acknowledgementOverdue = false
    private var waitingForCommit = false
    /// The batch waits for work off its tenant's lock (an index build, an import on a copy).
    private var waitingOffLock = false
    /// The AUTH or admin request waiting for every earlier request to be answered.
    private var waitingAlone: AloneRequest?
    private var runningAlone = false
    /// A framing error to report (then close) once the requests read before it are answered.
    private var pendingFailure: LearnStoreError?
    public private(set) var draining = false
    /// No more responses are sent: the connection failed, drained or closed.
    public private(set) var closing = false
    /// After a drain: input is read and dropped until the client closes.
    public private(set) var discardingInput = false
    private var readPending = false

    /// Responses queued and not yet flushed to the channel.
    public private(set) var queuedBytes = 0
    /// Responses flushed that the kernel has not taken yet.
    public private(set) var unsentBytes = 0

    private let connectedAt: NIODeadline
    private var lastFrameAt: NIODeadline

    public init(limits: Limits, now: NIODeadline) {
        self.limits = limits
        self.connectedAt = now
        self.lastFrameAt = now
    }

    public var session: Session? { handshake.session }
    public var isAuthenticated: Bool { handshake.isAuthenticated }

    public var pendingOutputBytes: Int { unsentBytes + heldBytes + queuedBytes }

    /// While the client leaves its responses unread nothing more runs: past this connection's soft
    /// limit, or while the server-wide budget is exhausted and this connection has bytes waiting.
    public func outputBlocked(_ budget: BufferBudget) -> Bool {
        let pending = pendingOutputBytes
        return pending >= limits.outputSoftLimitBytes || (pending > 0 && budget.isExhausted)
    }

    /// Whether frames already parsed may run.
    public func mayRun(_ budget: BufferBudget) -> Bool {
        !closing && !outputBlocked(budget)
    }

    /// Whether the handler may parse another frame from its buffer.
    public func mayParse(_ budget: BufferBudget) -> Bool {
        mayRun(budget) && pendingFailure == nil && waitingAlone == nil && !runningAlone && inFlight < limits.maximumInFlight
    }

    // MARK: input

    /// The channel asks whether to read: yes while requests may be parsed and the socket takes
    /// responses; otherwise the read waits (``nextAction`` returns `.read` once it may).
    public mutating func readRequested(budget: BufferBudget, writable: Bool) -> Bool {
        if discardingInput || (mayParse(budget) && !draining && writable) { return true }
        readPending = true
        return false
    }

    /// Frames arrived (one call per read, not per frame: the idle timeout needs no finer time).
    public mutating func bytesArrived(now: NIODeadline) {
        lastFrameAt = now
    }

    public mutating func frameReceived(_ frame: Frame) -> FrameAction {
        guard !closing else { return .ignore }
        inFlight += 1
        switch handshake.frameReceived(opcode: frame.header.opcode) {
        case .ignore:
            inFlight -= 1
            return .ignore
        case .hello:
            return .hello(frame)
        case .answerLocally:
            return .answerPing(frame)
        case .authenticate:
            waitingAlone = .authenticate(frame)
            return .queued
        case .dispatch where limits.aloneOpcodes.contains(frame.header.opcode):
            // `.dispatch` comes only once AUTH has succeeded: the session is there.
            guard let session else {
                inFlight -= 1
                return .ignore
            }
            waitingAlone = .admin(frame, session)
            return .queued
        case .dispatch:
            batch.append(frame)
            batchBytes += frame.payload.readableBytes + FrameHeader.size
            return .queued
        case .reject(let error, let close):
            if close { closing = true }
            return .reject(error, close: close)
        }
    }

    /// The stream can no longer be parsed: the requests read before the bad bytes are answered
    /// first, then `error` is sent and the connection closes.
    public mutating func framingFailed(_ error: LearnStoreError) {
        pendingFailure = error
    }

    /// After a framing error: no more input is kept.
    public var inputUnparseable: Bool { pendingFailure != nil }

    /// The outcome of HELLO (see ``HandshakeStateMachine/helloReceived(_:)``).
    public mutating func helloReceived(_ request: HelloRequest) -> Result<UInt16, LearnStoreError> {
        let result = handshake.helloReceived(request)
        if case .failure = result { closing = true }
        return result
    }

    /// Responses the handler produced itself (HELLO, PING before AUTH, a refusal, LOADING): `count`
    /// requests answered with `bytes` queued.
    public mutating func answered(count: Int, bytes: Int) {
        inFlight -= count
        queuedBytes += bytes
    }

    // MARK: execution

    /// Decides the next step. `commits` tells which held responses may go; `outputBudget` is the
    /// server-wide budget for responses; `writable` is the channel's writability.
    public mutating func nextAction(commits: some CommitStatus, outputBudget: BufferBudget, writable: Bool) -> Action {
        guard !closing else { return .none }
        if let first = held.first {
            let committed = commits.committedLSN
            if !first.responses.contains(where: { $0.lsn > committed }) {
                takeFirstHeld()
                return .write(releasing(first, commits: commits), storageFailures: storageFailures(first, commits: commits))
            }
            if let (above, error) = abandonment(of: first, committed: committed, commits: commits) {
                takeFirstHeld()
                return .write(releasing(first, commits: commits, abandonedAbove: above, with: error), storageFailures: storageFailures(first, commits: commits))
            }
            if !waitingForCommit {
                waitingForCommit = true
                return .waitForCommit(first.responses.map(\.lsn).max() ?? 0)
            }
        }
        let pending = pendingOutputBytes
        if pending > limits.outputHardLimitBytes {
            closing = true
            return .closeOverloaded(pendingBytes: pending, limit: limits.outputHardLimitBytes)
        }
        if let error = pendingFailure, inFlight == 0, held.isEmpty {
            pendingFailure = nil
            closing = true
            return .fail(error, opcode: 0, requestID: 0)
        }
        if !batch.isEmpty, !waitingOffLock, mayRun(outputBudget), let session {
            let frames = batch
            batch = []
            batchBytes = 0
            return .run(frames, session, outputRoom: max(1, limits.outputSoftLimitBytes - pending))
        }
        if let request = waitingAlone, batch.isEmpty, held.isEmpty {
            waitingAlone = nil
            runningAlone = true
            switch request {
            case .authenticate(let frame): return .authenticate(frame)
            case .admin(let frame, let session): return .runAdmin(frame, session)
            }
        }
        if draining, inFlight == 0, batch.isEmpty, waitingAlone == nil, !runningAlone, !outputBlocked(outputBudget) {
            closing = true
            discardingInput = true
            return .finishDrain
        }
        if readPending, mayParse(outputBudget), !draining, writable {
            readPending = false
            return .read
        }
        return .none
    }

    /// A `.run` finished: `result` answers the first `result.responses.count` of `frames`; the rest
    /// run later. Returns the bytes to send now when nothing is held and every write they observed
    /// is committed (the common case); otherwise the responses are held.
    public mutating func batchExecuted(_ result: BatchResult, frames: [Frame], commits: some CommitStatus) -> [UInt8]? {
        let ran = result.responses.count
        if ran < frames.count {
            let rest = frames[ran...]
            batch = Array(rest) + batch
            batchBytes += rest.reduce(0) { $0 + $1.payload.readableBytes + FrameHeader.size }
        }
        if held.isEmpty && result.maximumLSN <= commits.committedLSN && !commits.hasFailures {
            answered(count: ran, bytes: result.bytes.count)
            return result.bytes
        }
        held.append(result)
        heldBytes += result.bytes.count
        return nil
    }

    /// Whether a held batch is answered without waiting longer, its replies that depend on a write
    /// above the returned mark with the returned error: once it has waited past the acknowledgement
    /// timeout (everything not committed), or on a node that will acknowledge nothing above its
    /// gate (once what is at or below the gate is committed), rather than held until the
    /// connection closes.
    private func abandonment(of batch: BatchResult, committed: UInt64, commits: some CommitStatus) -> (above: UInt64, error: LearnStoreError)? {
        if acknowledgementOverdue {
            return (committed, LearnStoreError(
                .outcomeUnknown,
                "the write this request made or read was not acknowledged within \(limits.acknowledgementTimeoutSeconds) s (too few in-sync replicas have it, "
                    + "or the disk stalls); it may or may not survive: retry, a create with the same idempotency key"))
        }
        if let stopped = commits.acknowledgementsStopped, !batch.responses.contains(where: { $0.lsn > committed && $0.lsn <= stopped.above }) {
            return (stopped.above, stopped.error)
        }
        return nil
    }

    private mutating func takeFirstHeld() {
        held.removeFirst()
        heldReleased += 1
        acknowledgementOverdue = false
        // A wait registered for this batch may never end; the next batch registers its own.
        waitingForCommit = false
    }

    /// The periodic check of the first held reply's wait: true when it has just passed the
    /// acknowledgement timeout (the next ``nextAction(commits:outputBudget:writable:)`` answers it).
    public mutating func acknowledgementCheck(now: NIODeadline) -> Bool {
        guard limits.acknowledgementTimeoutSeconds > 0, !held.isEmpty, !closing else {
            oldestHeld = nil
            return false
        }
        guard let oldest = oldestHeld, oldest.number == heldReleased else {
            oldestHeld = (heldReleased, now)
            return false
        }
        guard !acknowledgementOverdue, now - oldest.since >= .milliseconds(Int64(limits.acknowledgementTimeoutSeconds * 1000)) else { return false }
        acknowledgementOverdue = true
        return true
    }

    /// A `.run` did not run: it waits for work off its tenant's lock (an index build, an import on a
    /// copy), and its frames run, first and in order, after ``offLockWorkDone()``. Nothing after
    /// them runs meanwhile.
    public mutating func batchWaitsOffLock(_ frames: [Frame]) {
        batch = frames + batch
        batchBytes += frames.reduce(0) { $0 + $1.payload.readableBytes + FrameHeader.size }
        waitingOffLock = true
    }

    /// The work ``batchWaitsOffLock(_:)`` waited for is done.
    public mutating func offLockWorkDone() {
        waitingOffLock = false
    }

    /// The commit tracker woke the connection: held responses may be resolved.
    public mutating func commitProgressed() {
        waitingForCommit = false
    }

    /// Counts a held batch as answered and returns its bytes, a response whose exact write failed
    /// (not merely one above the commit mark) replaced by STORAGE_UNAVAILABLE, and with
    /// `abandonedAbove`, one that depends on a write above that mark replaced by `abandonment`.
    private mutating func releasing(
        _ result: BatchResult, commits: some CommitStatus, abandonedAbove: UInt64 = .max, with abandonment: LearnStoreError? = nil
    ) -> [UInt8] {
        heldBytes -= result.bytes.count
        var bytes = result.bytes
        let failures = commits.hasFailures && result.responses.contains(where: { commits.hasFailed($0.lsn) })
        if failures || result.responses.contains(where: { $0.lsn > abandonedAbove }) {
            var writer = ByteWriter(capacity: result.bytes.count)
            for response in result.responses {
                if commits.hasFailures && commits.hasFailed(response.lsn) {
                    writer.writeErrorFrame(
                        opcode: response.opcode, requestID: response.requestID,
                        LearnStoreError(.storageUnavailable, "the write could not be made durable and was undone"))
                } else if response.lsn > abandonedAbove, let abandonment {
                    writer.writeErrorFrame(opcode: response.opcode, requestID: response.requestID, abandonment)
                } else {
                    writer.writeBytes(result.bytes[response.range])
                }
            }
            bytes = writer.bytes
        }
        answered(count: result.responses.count, bytes: bytes.count)
        return bytes
    }

    private func storageFailures(_ result: BatchResult, commits: some CommitStatus) -> [UInt8] {
        guard commits.hasFailures else { return [] }
        return result.responses.filter { commits.hasFailed($0.lsn) }.map(\.opcode)
    }

    /// The AUTH started by `.authenticate` was verified (or refused). On `.accept` the handler sends
    /// the AUTH response; on `.reject` the error, closing when told to. Either way it then counts the
    /// answer with ``answered(count:bytes:)``.
    public mutating func authenticationFinished(_ result: Result<VerifiedToken, LearnStoreError>) -> HandshakeStateMachine.AuthAction {
        runningAlone = false
        let action: HandshakeStateMachine.AuthAction
        switch result {
        case .success(let token): action = handshake.authenticationSucceeded(token)
        case .failure(let error): action = handshake.authenticationFailed(error)
        }
        if case .reject(_, close: true) = action { closing = true }
        return action
    }

    /// The admin request started by `.runAdmin` produced its response (counted here).
    public mutating func adminFinished(bytes: Int) {
        runningAlone = false
        answered(count: 1, bytes: bytes)
    }

    // MARK: output

    /// Queued responses were handed to the channel in one write.
    public mutating func outputFlushed(bytes: Int) {
        queuedBytes -= bytes
        unsentBytes += bytes
    }

    /// What the channel still holds of the flushed responses: the kernel took the rest.
    public mutating func outputUnsent(bytes: Int) {
        unsentBytes = bytes
    }

    // MARK: lifecycle

    /// A graceful shutdown began: read nothing more, answer what was read, then drain.
    public mutating func shutdownRequested() {
        draining = true
    }

    /// The periodic check: the handshake must finish within its timeout, and a connection with
    /// nothing in flight may stay idle only for the idle timeout.
    public func timeoutExpired(now: NIODeadline) -> LearnStoreError? {
        guard !closing else { return nil }
        guard isAuthenticated else {
            // Until AUTH succeeds only the handshake timeout applies: a client between HELLO and AUTH
            // is not idle, it is handshaking (and the idle timeout may be the shorter of the two).
            guard now - connectedAt > .milliseconds(Int64(limits.handshakeTimeoutSeconds * 1000)) else { return nil }
            return LearnStoreError(.timeout, "HELLO and AUTH were not completed within \(limits.handshakeTimeoutSeconds) s")
        }
        if inFlight == 0, now - lastFrameAt > .milliseconds(Int64(limits.idleTimeoutSeconds * 1000)) {
            return LearnStoreError(.timeout, "no request for \(limits.idleTimeoutSeconds) s")
        }
        return nil
    }

    /// The handler is failing the connection: nothing more is answered.
    public mutating func close() {
        closing = true
        handshake.close()
    }

    /// The channel is gone: everything waiting is dropped.
    public mutating func channelClosed() {
        close()
        held.removeAll()
        heldBytes = 0
        batch.removeAll()
        batchBytes = 0
        waitingAlone = nil
        queuedBytes = 0
    }
}
