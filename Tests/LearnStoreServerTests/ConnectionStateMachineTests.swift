import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import NIOCore
import Testing
@testable import LearnStoreServer

/// The order and flow of one connection (PROTOCOL.md section 3.1) as transcripts of events and the
/// actions they return, without sockets: in-flight limits, replies held until their writes are
/// durable, AUTH and admin requests that run alone, back-pressure, framing errors and the drain.
@Suite struct ConnectionStateMachineTests {
    struct Commits: CommitStatus {
        var committedLSN: UInt64 = 0
        var failed: Set<UInt64> = []
        func hasFailed(_ lsn: UInt64) -> Bool { failed.contains(lsn) }
        var hasFailures: Bool { !failed.isEmpty }
        var acknowledgementsStopped: StoppedAcknowledgements?
    }

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func limits(inFlight: Int = 64, soft: Int = 1000, hard: Int = 5000) -> ConnectionStateMachine.Limits {
        .init(
            maximumInFlight: inFlight, outputSoftLimitBytes: soft, outputHardLimitBytes: hard, handshakeTimeoutSeconds: 10,
            idleTimeoutSeconds: 300, aloneOpcodes: [Opcode.adminSnapshot])
    }

    static func frame(_ opcode: UInt8, _ requestID: UInt32) -> Frame {
        Frame(header: FrameHeader(opcode: opcode, requestID: requestID), payload: ByteBuffer())
    }

    static let token = VerifiedToken(
        identity: CallerIdentity(tenantID: "acme", appID: nil, personID: UUID16(high: 1, low: 2), scopes: [.recordsRead, .recordsWrite, .admin]),
        expiresAt: Timestamp(milliseconds: 1_000_000), acceptedUntil: Timestamp(milliseconds: 1_030_000))

    /// A budget nobody else uses: never exhausted.
    static let budget = BufferBudget(limit: 1 << 30)

    /// HELLO and AUTH done, both answered.
    static func authenticated(_ limits: ConnectionStateMachine.Limits = limits()) -> ConnectionStateMachine {
        var machine = ConnectionStateMachine(limits: limits, now: start)
        guard case .hello = machine.frameReceived(frame(Opcode.hello, 1)) else { fatalError("HELLO not taken") }
        _ = machine.helloReceived(HelloRequest(clientName: "test"))
        machine.answered(count: 1, bytes: 10)
        guard case .queued = machine.frameReceived(frame(Opcode.auth, 2)) else { fatalError("AUTH not queued") }
        guard case .authenticate = machine.next() else { fatalError("AUTH did not start") }
        guard case .accept = machine.authenticationFinished(.success(token)) else { fatalError("AUTH refused") }
        machine.answered(count: 1, bytes: 10)
        machine.flushAll()
        return machine
    }

    /// A batch result answering `frames` with `bytesEach` bytes each, every response observing `lsn`.
    static func result(_ frames: [Frame], lsn: UInt64, bytesEach: Int = FrameHeader.size) -> BatchResult {
        var responses: [ResponseMeta] = []
        var bytes: [UInt8] = []
        for frame in frames {
            var writer = ByteWriter()
            writer.writeFrame(FrameHeader(opcode: frame.header.opcode, requestID: frame.header.requestID)) {
                $0.writeBytes([UInt8](repeating: 7, count: max(0, bytesEach - FrameHeader.size)))
            }
            responses.append(ResponseMeta(requestID: frame.header.requestID, opcode: frame.header.opcode, lsn: lsn, range: bytes.count..<(bytes.count + writer.count)))
            bytes += writer.bytes
        }
        return BatchResult(bytes: bytes, responses: responses, maximumLSN: lsn, counts: [:], errors: [])
    }

    @Test func parsingPausesAtTheInFlightLimitAndAPendingReadResumesWhenAnswered() {
        var machine = Self.authenticated(Self.limits(inFlight: 2))
        _ = machine.frameReceived(Self.frame(Opcode.get, 3))
        _ = machine.frameReceived(Self.frame(Opcode.get, 4))
        #expect(!machine.mayParse(Self.budget))
        let readsNow = machine.readRequested(budget: Self.budget, writable: true)
        #expect(!readsNow, "a read while parsing is paused must wait")
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the batch did not run")
            return
        }
        #expect(frames.map(\.header.requestID) == [3, 4])
        let sentNow = machine.batchExecuted(Self.result(frames, lsn: 0), frames: frames, commits: Commits())
        #expect(sentNow != nil)
        #expect(machine.inFlight == 0)
        guard case .read = machine.next() else {
            Issue.record("the waiting read was not resumed")
            return
        }
        guard case .none = machine.next() else {
            Issue.record("an action without an event")
            return
        }
    }

    /// No spinning: while the write an AUTH waits behind is not durable, the machine asks once to be
    /// woken and then has nothing to do.
    @Test func anAuthBehindAWriteStartsOnlyAfterTheWritesReplyIsReleased() {
        var machine = Self.authenticated()
        var commits = Commits(committedLSN: 4)
        _ = machine.frameReceived(Self.frame(Opcode.create, 3))
        _ = machine.frameReceived(Self.frame(Opcode.auth, 4))
        #expect(!machine.mayParse(Self.budget), "nothing after an AUTH is parsed until it is answered")
        guard case .run(let frames, _, _) = machine.next(commits) else {
            Issue.record("the write did not run")
            return
        }
        let sentNow = machine.batchExecuted(Self.result(frames, lsn: 5), frames: frames, commits: commits)
        #expect(sentNow == nil, "an undurable write's reply was sent")
        guard case .waitForCommit(5) = machine.next(commits) else {
            Issue.record("the held reply did not ask to be woken at LSN 5")
            return
        }
        guard case .none = machine.next(commits) else {
            Issue.record("the AUTH started before the earlier reply was released")
            return
        }
        commits.committedLSN = 5
        machine.commitProgressed()
        guard case .write(let bytes, let failures) = machine.next(commits) else {
            Issue.record("the committed reply was not released")
            return
        }
        #expect(bytes.count == FrameHeader.size && failures.isEmpty)
        guard case .authenticate(let auth) = machine.next(commits) else {
            Issue.record("the AUTH did not start once every earlier reply was out")
            return
        }
        #expect(auth.header.requestID == 4)
    }

    /// Requests 3 (`first`) and 4 (`second`) run as one batch whose replies observed LSNs 5 and 6,
    /// held with the commit at 4: the machine and the batch's result, or nil when it did not run.
    static func heldBatch(_ first: UInt8, _ second: UInt8) -> (ConnectionStateMachine, BatchResult)? {
        var machine = authenticated()
        _ = machine.frameReceived(frame(first, 3))
        _ = machine.frameReceived(frame(second, 4))
        guard case .run(let frames, _, _) = machine.next() else { return nil }
        var result = result(frames, lsn: 6)
        result.responses[0].lsn = 5
        guard machine.batchExecuted(result, frames: frames, commits: Commits(committedLSN: 4)) == nil else { return nil }
        return (machine, result)
    }

    @Test func onlyTheFailedWriteOfAHeldBatchIsAnsweredStorageUnavailable() throws {
        let held = try #require(Self.heldBatch(Opcode.create, Opcode.create), "the batch did not run and wait")
        var machine = held.0
        let result = held.1
        let commits = Commits(committedLSN: 6, failed: [6])
        guard case .write(let bytes, let failures) = machine.next(commits) else {
            Issue.record("the resolved batch was not released")
            return
        }
        #expect(failures == [Opcode.create])
        let size = FrameHeader.size
        #expect(Array(bytes[0..<size]) == Array(result.bytes[0..<size]), "the committed write's reply is unchanged")
        #expect(bytes.count > 2 * size, "the failed write's reply carries an error body")
        #expect(bytes[size + 4] == Opcode.create && bytes[size + 5] & FrameHeader.errorFlag != 0, "the failed write is answered with an error frame")
        #expect(bytes[size + 6] == 4, "with its own request id")
        #expect(machine.inFlight == 0 && machine.heldBytes == 0)
    }

    /// A fenced primary acknowledges nothing more: of a held batch, the reply whose write is
    /// committed goes as it is, the one above the mark is answered with the fence's error at once.
    @Test func aHeldReplyAboveTheMarkIsAnsweredWhenAcknowledgementsStop() throws {
        let held = try #require(Self.heldBatch(Opcode.create, Opcode.get), "the batch did not run and wait")
        var machine = held.0
        let result = held.1
        guard case .waitForCommit(6) = machine.next(Commits(committedLSN: 4)) else {
            Issue.record("a reply above the mark was not held")
            return
        }
        machine.commitProgressed()
        // Fenced with the gate at 5: the create (5) still waits for the log's own commit; the get,
        // which saw write 6, will never be acknowledged.
        let fence = StoppedAcknowledgements(above: 5, error: LearnStoreError(.outcomeUnknown, "fenced"))
        guard case .waitForCommit = machine.next(Commits(committedLSN: 4, acknowledgementsStopped: fence)) else {
            Issue.record("a reply at or below the gate did not wait for its commit")
            return
        }
        machine.commitProgressed()
        let stopped = Commits(committedLSN: 5, acknowledgementsStopped: fence)
        guard case .write(let bytes, let failures) = machine.next(stopped) else {
            Issue.record("the held batch was not answered when acknowledgements stopped")
            return
        }
        #expect(failures.isEmpty)
        let size = FrameHeader.size
        #expect(Array(bytes[0..<size]) == Array(result.bytes[0..<size]), "the committed write's reply is unchanged")
        #expect(bytes[size + 4] == Opcode.get && bytes[size + 5] & FrameHeader.errorFlag != 0, "the read of an unacknowledged write gets an error frame")
        #expect(bytes[size + 6] == 4, "with its own request id")
        let error = Array(bytes[(2 * size)...]).withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try? ErrorBody.decode(from: &reader)
        }
        #expect(error?.code == .outcomeUnknown)
        #expect(machine.inFlight == 0 && machine.heldBytes == 0)
    }

    /// A reply held past the acknowledgement timeout is answered OUTCOME_UNKNOWN; the clock starts
    /// when the periodic check first sees that batch first in line, and restarts for the next one.
    @Test func aReplyHeldPastTheAcknowledgementTimeoutIsAnsweredOutcomeUnknown() throws {
        var limits = Self.limits()
        limits.acknowledgementTimeoutSeconds = 1
        var machine = Self.authenticated(limits)
        _ = machine.frameReceived(Self.frame(Opcode.create, 3))
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the batch did not run")
            return
        }
        #expect(machine.batchExecuted(Self.result(frames, lsn: 6), frames: frames, commits: Commits(committedLSN: 4)) == nil)
        guard case .waitForCommit(6) = machine.next(Commits(committedLSN: 4)) else {
            Issue.record("the reply was not held")
            return
        }
        let start = Self.start + .seconds(5)
        let first = machine.acknowledgementCheck(now: start)
        #expect(!first, "the first sight starts the clock")
        let early = machine.acknowledgementCheck(now: start + .milliseconds(900))
        #expect(!early)
        guard case .none = machine.next(Commits(committedLSN: 5)) else {
            Issue.record("a reply still within its time went out")
            return
        }
        let due = machine.acknowledgementCheck(now: start + .milliseconds(1_000))
        #expect(due)
        let again = machine.acknowledgementCheck(now: start + .milliseconds(1_100))
        #expect(!again, "once")
        guard case .write(let bytes, _) = machine.next(Commits(committedLSN: 5)) else {
            Issue.record("the overdue reply was not answered")
            return
        }
        #expect(bytes[4] == Opcode.create && bytes[5] & FrameHeader.errorFlag != 0 && bytes[6] == 3)
        let error = Array(bytes[FrameHeader.size...]).withUnsafeBytes { raw in
            var reader = ByteReader(raw)
            return try? ErrorBody.decode(from: &reader)
        }
        #expect(error?.code == .outcomeUnknown)
        #expect(machine.inFlight == 0 && machine.heldBytes == 0)
        let afterwards = machine.acknowledgementCheck(now: start + .seconds(10))
        #expect(!afterwards, "nothing held any more")
    }

    @Test func anAdminRequestRunsAloneAfterEveryEarlierReply() {
        var machine = Self.authenticated()
        _ = machine.frameReceived(Self.frame(Opcode.get, 3))
        _ = machine.frameReceived(Self.frame(Opcode.adminSnapshot, 4))
        #expect(!machine.mayParse(Self.budget))
        guard case .run = machine.next() else {
            Issue.record("the GET before the admin request did not run first")
            return
        }
    }

    @Test func anAdminRequestBlocksParsingUntilItIsAnswered() {
        var machine = Self.authenticated()
        _ = machine.frameReceived(Self.frame(Opcode.adminSnapshot, 3))
        guard case .runAdmin(let frame, _) = machine.next() else {
            Issue.record("the admin request did not start")
            return
        }
        #expect(frame.header.requestID == 3)
        #expect(!machine.mayParse(Self.budget))
        guard case .none = machine.next() else {
            Issue.record("an action while the admin request runs")
            return
        }
        machine.adminFinished(bytes: 12)
        #expect(machine.mayParse(Self.budget) && machine.inFlight == 0)
    }

    @Test func aBatchWaitingOffTheLockRunsFirstAndAloneOnceTheWorkIsDone() {
        var machine = Self.authenticated()
        _ = machine.frameReceived(Self.frame(Opcode.create, 3))
        _ = machine.frameReceived(Self.frame(Opcode.list, 4))
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the batch did not run")
            return
        }
        machine.batchWaitsOffLock(frames)
        _ = machine.frameReceived(Self.frame(Opcode.get, 5))
        _ = machine.frameReceived(Self.frame(Opcode.adminSnapshot, 6))
        guard case .none = machine.next() else {
            Issue.record("an action while the batch waits off the lock")
            return
        }
        machine.offLockWorkDone()
        guard case .run(let again, _, _) = machine.next() else {
            Issue.record("the waiting batch did not run after the work")
            return
        }
        #expect(again.map(\.header.requestID) == [3, 4, 5], "the waiting frames first, in order, then the ones read meanwhile")
        _ = machine.batchExecuted(Self.result(again, lsn: 0), frames: again, commits: Commits())
        guard case .runAdmin(let admin, _) = machine.next() else {
            Issue.record("the admin request did not start after the batch was answered")
            return
        }
        #expect(admin.header.requestID == 6)
    }

    @Test func aFramingErrorIsSentAfterEveryReplyToTheRequestsBeforeIt() {
        var machine = Self.authenticated()
        _ = machine.frameReceived(Self.frame(Opcode.create, 3))
        machine.framingFailed(LearnStoreError(.frameTooLarge, "too large"))
        #expect(!machine.mayParse(Self.budget))
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the request read before the bad frame did not run")
            return
        }
        _ = machine.batchExecuted(Self.result(frames, lsn: 7), frames: frames, commits: Commits(committedLSN: 6))
        _ = machine.next(Commits(committedLSN: 6))  // waits for LSN 7
        guard case .none = machine.next(Commits(committedLSN: 6)) else {
            Issue.record("the error went out before the held reply")
            return
        }
        machine.commitProgressed()
        guard case .write = machine.next(Commits(committedLSN: 7)) else {
            Issue.record("the held reply was not released")
            return
        }
        guard case .fail(let error, 0, 0) = machine.next(Commits(committedLSN: 7)) else {
            Issue.record("the framing error was not sent")
            return
        }
        #expect(error.code == .frameTooLarge && machine.closing)
    }

    @Test func theDrainAnswersEverythingReadThenClosesTheSendingSide() {
        var machine = Self.authenticated()
        _ = machine.frameReceived(Self.frame(Opcode.get, 3))
        machine.shutdownRequested()
        let readsNow = machine.readRequested(budget: Self.budget, writable: true)
        #expect(!readsNow, "a draining connection reads no more requests")
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the request read before the shutdown did not run")
            return
        }
        let sentNow = machine.batchExecuted(Self.result(frames, lsn: 0), frames: frames, commits: Commits())
        #expect(sentNow != nil)
        guard case .finishDrain = machine.next() else {
            Issue.record("the drain did not finish once everything was answered")
            return
        }
        #expect(machine.closing && machine.discardingInput)
        let readsAfterDrain = machine.readRequested(budget: Self.budget, writable: false)
        #expect(readsAfterDrain, "after the drain input is read and dropped")
        guard case .ignore = machine.frameReceived(Self.frame(Opcode.get, 4)) else {
            Issue.record("a frame after the drain was taken")
            return
        }
    }

    @Test func theDrainWaitsForTheClientToReadWhatIsPending() {
        var machine = Self.authenticated(Self.limits(soft: 100))
        machine.answered(count: 0, bytes: 150)
        machine.flushAll(written: false)
        machine.shutdownRequested()
        guard case .none = machine.next() else {
            Issue.record("the drain finished while the client had not read its replies")
            return
        }
        machine.outputUnsent(bytes: 0)
        guard case .finishDrain = machine.next() else {
            Issue.record("the drain did not finish once the client read")
            return
        }
    }

    @Test func repliesPastTheSoftLimitStopNewRequestsUntilTheClientReads() {
        var machine = Self.authenticated(Self.limits(soft: 100))
        _ = machine.frameReceived(Self.frame(Opcode.list, 3))
        _ = machine.frameReceived(Self.frame(Opcode.list, 4))
        guard case .run(let frames, _, let room) = machine.next() else {
            Issue.record("the batch did not run")
            return
        }
        #expect(room == 100)
        // The executor stopped after the first reply filled the room; the second request waits.
        let first = Self.result(Array(frames.prefix(1)), lsn: 0, bytesEach: 120)
        let sentNow = machine.batchExecuted(first, frames: frames, commits: Commits())
        #expect(sentNow != nil)
        #expect(machine.outputBlocked(Self.budget) && machine.inFlight == 1)
        guard case .none = machine.next() else {
            Issue.record("a request ran while the client left 120 bytes unread")
            return
        }
        machine.outputFlushed(bytes: 120)
        guard case .none = machine.next() else {
            Issue.record("a request ran before the kernel took the reply")
            return
        }
        machine.outputUnsent(bytes: 100)
        guard case .none = machine.next() else {
            Issue.record("a request ran while 100 bytes of the reply waited in the channel")
            return
        }
        machine.outputUnsent(bytes: 0)
        guard case .run(let rest, _, _) = machine.next() else {
            Issue.record("the waiting request did not run once the client read")
            return
        }
        #expect(rest.map(\.header.requestID) == [4])
    }

    @Test func repliesPastTheHardLimitCloseTheConnection() {
        var machine = Self.authenticated(Self.limits(soft: 100, hard: 1000))
        _ = machine.frameReceived(Self.frame(Opcode.list, 3))
        guard case .run(let frames, _, _) = machine.next() else {
            Issue.record("the batch did not run")
            return
        }
        _ = machine.batchExecuted(Self.result(frames, lsn: 0, bytesEach: 1200), frames: frames, commits: Commits())
        guard case .closeOverloaded(1200, 1000) = machine.next() else {
            Issue.record("a 1200-byte reply past a 1000-byte hard limit did not close")
            return
        }
        #expect(machine.closing)
    }

    @Test func anExhaustedServerBudgetStopsOnlyConnectionsWithRepliesWaiting() {
        let exhausted = BufferBudget(limit: 10)
        exhausted.charge(10)
        var idle = Self.authenticated()
        #expect(idle.mayParse(exhausted), "a connection with nothing waiting keeps going")
        idle.answered(count: 0, bytes: 5)
        #expect(!idle.mayParse(exhausted))
        #expect(idle.mayParse(Self.budget))
    }

    @Test func theHandshakeAndIdleTimeouts() {
        let machine = ConnectionStateMachine(limits: Self.limits(), now: Self.start)
        #expect(machine.timeoutExpired(now: Self.start + .seconds(9)) == nil)
        #expect(machine.timeoutExpired(now: Self.start + .seconds(11))?.code == .timeout)

        var authenticated = Self.authenticated()
        #expect(authenticated.timeoutExpired(now: Self.start + .seconds(299)) == nil)
        #expect(authenticated.timeoutExpired(now: Self.start + .seconds(301))?.code == .timeout)
        authenticated.bytesArrived(now: Self.start + .seconds(200))
        #expect(authenticated.timeoutExpired(now: Self.start + .seconds(301)) == nil)
        _ = authenticated.frameReceived(Self.frame(Opcode.get, 3))
        #expect(authenticated.timeoutExpired(now: Self.start + .seconds(900)) == nil, "a request in flight is not idle")
    }

    /// Between HELLO and AUTH a client is handshaking, not idle: only the handshake timeout applies,
    /// even where the idle timeout is the shorter.
    @Test func theIdleTimeoutWaitsForAuth() {
        var limits = Self.limits()
        limits.idleTimeoutSeconds = 1
        var machine = ConnectionStateMachine(limits: limits, now: Self.start)
        guard case .hello = machine.frameReceived(Self.frame(Opcode.hello, 1)) else {
            Issue.record("HELLO not taken")
            return
        }
        _ = machine.helloReceived(HelloRequest(clientName: "test"))
        machine.answered(count: 1, bytes: 10)
        #expect(machine.timeoutExpired(now: Self.start + .seconds(5)) == nil, "past the idle timeout, within the handshake's")
        #expect(machine.timeoutExpired(now: Self.start + .seconds(11))?.code == .timeout)
        let authenticated = Self.authenticated(limits)
        #expect(authenticated.timeoutExpired(now: Self.start + .seconds(2))?.code == .timeout, "once authenticated, idleness counts")
    }

    @Test func aRejectionThatClosesStopsEverything() {
        var machine = ConnectionStateMachine(limits: Self.limits(), now: Self.start)
        guard case .reject(let error, close: true) = machine.frameReceived(Self.frame(Opcode.get, 1)) else {
            Issue.record("a first frame other than HELLO was not refused with a close")
            return
        }
        #expect(error.code == .badFrame && machine.closing)
        guard case .none = machine.next() else {
            Issue.record("an action after the close")
            return
        }
    }
}

extension ConnectionStateMachine {
    mutating func next(_ commits: ConnectionStateMachineTests.Commits = .init()) -> Action {
        nextAction(commits: commits, outputBudget: ConnectionStateMachineTests.budget, writable: true)
    }

    /// Everything queued was handed to the channel (and, by default, taken by the kernel).
    mutating func flushAll(written: Bool = true) {
        let queued = queuedBytes
        outputFlushed(bytes: queued)
        if written { outputUnsent(bytes: 0) }
    }
}
