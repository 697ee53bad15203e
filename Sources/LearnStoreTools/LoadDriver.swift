import Histogram
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import NIOPosix

/// Produces the next request of a load run: writes its payload and returns its opcode and the
/// index of its operation kind (for per-kind statistics). Runs on the connection's event loop.
typealias LoadRequestSource = (inout ByteWriter) -> (opcode: UInt8, kind: Int)

/// What one connection measured.
struct LoadConnectionResult: Sendable {
    var histograms: [Histogram<UInt64>]
    var completed: [Int]
    var errors: [UInt16: Int]
    var errorNames: [UInt16: String]
    /// Completed requests per second of the run (index = second since start).
    var perSecond: [Int]
    /// With feed subscribers: each acknowledged write's tenant sequence and when its reply arrived.
    var acknowledgements: [(sequence: UInt64, at: UInt64)] = []
    /// Replies without an error per tenth of a second of the run (a failover shows as a gap).
    var successesPerTenth: [Int] = []
    /// Requests sent but never answered: the connection closed under them (their outcome is unknown).
    var unanswered = 0
}

/// The load tool's connection handler: a closed loop that keeps `depth` requests in flight, or an
/// open loop that sends at a fixed rate and measures latency from each request's intended send time
/// (coordinated-omission correction). It parses only response headers (and error bodies), so the
/// client costs little CPU next to the server under test. For the same reason, the state touched per
/// response skips Swift's dynamic exclusivity checks (about 5 % of the load tool's CPU on pipelined
/// reads): the handler runs on one event loop and never passes its properties `inout` to code that
/// reads them back.
final class LoadDriverHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Mode: Sendable {
        case closedLoop(depth: Int)
        case openLoop(requestsPerSecond: Double)
    }

    private let source: LoadRequestSource
    private let mode: Mode
    /// Stop and close on MOVED, NOT_PRIMARY or SHUTTING_DOWN, for the runner to reconnect to the
    /// cluster's current primary (`learnstore bench --seeds`).
    private let followsPrimary: Bool
    /// The connection is of no more use: closed, or given up for another primary.
    private(set) var finished = false
    private let kinds: Int
    private var handshake: [UInt8]
    @exclusivity(unchecked) private var handshakeResponses = 2
    private var handshakeError: LearnStoreError?
    private var handshakePromise: EventLoopPromise<Void>?
    private let decoder = FrameDecoder(maximumFrameBytes: 256 << 20)
    @exclusivity(unchecked) private var cumulation: ByteBuffer?
    @exclusivity(unchecked) private var writer = ByteWriter(capacity: 64 << 10)

    // In-flight requests, in send order: (intended or actual send time, kind).
    @exclusivity(unchecked) private var inFlight = CircularBuffer<(UInt64, Int)>(initialCapacity: 1024)
    @exclusivity(unchecked) private var nextID: UInt32 = 100
    @exclusivity(unchecked) private var running = false
    @exclusivity(unchecked) private var recording = false
    private var startedAt: UInt64 = 0
    private var openLoopSent: Int = 0
    private var openLoopTask: RepeatedTask?
    private var context: ChannelHandlerContext?

    @exclusivity(unchecked) private var histograms: [Histogram<UInt64>]
    @exclusivity(unchecked) private var completed: [Int]
    private var errors: [UInt16: Int] = [:]
    private var errorNames: [UInt16: String] = [:]
    @exclusivity(unchecked) private var perSecond: [Int] = []
    @exclusivity(unchecked) private var measureStart: UInt64 = 0
    /// Kinds whose replies start with the tenant's sequence (writes), noted when subscribers measure delivery.
    private let sequencedKinds: Set<Int>
    @exclusivity(unchecked) private var acknowledgements: [(sequence: UInt64, at: UInt64)] = []
    @exclusivity(unchecked) private var successesPerTenth: [Int] = []
    private var unanswered = 0

    init(hello: HelloRequest, token: String, mode: Mode, kinds: Int, sequencedKinds: Set<Int> = [], followsPrimary: Bool = false,
         source: @escaping LoadRequestSource) {
        self.sequencedKinds = sequencedKinds
        self.followsPrimary = followsPrimary
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: Opcode.hello, requestID: 1)) { hello.encode(into: &$0) }
        writer.writeFrame(FrameHeader(opcode: Opcode.auth, requestID: 2)) { AuthRequest(token: token).encode(into: &$0) }
        self.handshake = writer.bytes
        self.mode = mode
        self.kinds = kinds
        self.source = source
        self.histograms = (0..<kinds).map { _ in Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three) }
        self.completed = Array(repeating: 0, count: kinds)
    }

    @inline(__always) static func now() -> UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }

    // MARK: control (on the channel's event loop)

    func performHandshake(context: ChannelHandlerContext, promise: EventLoopPromise<Void>) {
        self.context = context
        handshakePromise = promise
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: handshake)), promise: nil)
    }

    func start(context: ChannelHandlerContext) {
        running = true
        startedAt = Self.now()
        switch mode {
        case .closedLoop(let depth):
            for _ in 0..<depth { enqueue(at: Self.now()) }
            flush(context: context)
        case .openLoop(let rate):
            let interval = 1_000_000_000.0 / rate
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            openLoopTask = context.eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .microseconds(500)) { _ in
                let handler = loopBound.value
                guard handler.running, let context = handler.context else { return }
                let elapsed = Self.now() - handler.startedAt
                let due = Int(Double(elapsed) / interval) + 1
                while handler.openLoopSent < due && handler.inFlight.count < 1 << 20 {
                    let intended = handler.startedAt + UInt64(Double(handler.openLoopSent) * interval)
                    handler.enqueue(at: intended)
                    handler.openLoopSent += 1
                }
                handler.flush(context: context)
            }
        }
    }

    /// Starts measuring; `since` is the run's recording start, for a connection that replaces one
    /// during the run (its timelines must line up with the others').
    func beginRecording(since: UInt64? = nil) {
        recording = true
        measureStart = since ?? Self.now()
        for index in histograms.indices { histograms[index].reset() }
        completed = Array(repeating: 0, count: kinds)
        errors = [:]
        perSecond = []
        successesPerTenth = []
        unanswered = 0
    }

    var recordingStart: UInt64? { recording ? measureStart : nil }

    func stop() {
        running = false
        recording = false
        openLoopTask?.cancel()
    }

    var result: LoadConnectionResult {
        LoadConnectionResult(histograms: histograms, completed: completed, errors: errors, errorNames: errorNames, perSecond: perSecond,
                             acknowledgements: acknowledgements, successesPerTenth: successesPerTenth, unanswered: unanswered)
    }

    // MARK: requests and responses

    @inline(__always)
    private func enqueue(at time: UInt64) {
        let lengthAt = writer.count
        writer.writeU32(0)
        writer.writeU8(0)
        writer.writeU8(0)
        writer.writeU32(nextID)
        nextID &+= 1
        let (opcode, kind) = source(&writer)
        writer.bytes[lengthAt + 4] = opcode
        writer.setU32(UInt32(writer.count - lengthAt - 4), at: lengthAt)
        inFlight.append((time, kind))
    }

    private func flush(context: ChannelHandlerContext) {
        guard writer.count > 0 else { return }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: writer.bytes)), promise: nil)
        writer.reset()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        guard var buffer = cumulation else { return }
        cumulation = nil
        let now = Self.now()
        while let frame = try? decoder.next(from: &buffer) {
            if handshakeResponses > 0 {
                handshakeResponses -= 1
                if frame.header.isError, handshakeError == nil {
                    handshakeError = (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                        ?? LearnStoreError(.protocolViolation, "malformed handshake error")
                }
                if handshakeResponses == 0 {
                    if let handshakeError { handshakePromise?.fail(handshakeError) } else { handshakePromise?.succeed(()) }
                    handshakePromise = nil
                }
                continue
            }
            guard let (sent, kind) = inFlight.popFirst() else { continue }
            if !sequencedKinds.isEmpty, sequencedKinds.contains(kind), !frame.header.isError,
                let sequence = frame.payload.getInteger(at: frame.payload.readerIndex, endianness: .little, as: UInt64.self)
            {
                acknowledgements.append((sequence, now))
            }
            var errorCode: LearnStoreError.Code?
            if frame.header.isError && (recording || followsPrimary) {
                let error = (try? frame.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) })
                errorCode = error?.code
                if recording {
                    let code = error?.code.rawValue ?? 0
                    errors[code, default: 0] += 1
                    if errorNames[code] == nil { errorNames[code] = error?.code.name ?? "MALFORMED" }
                }
            }
            if recording {
                let latency = now > sent ? now - sent : 0
                histograms[kind].record(latency)
                completed[kind] += 1
                let elapsed = now > measureStart ? now - measureStart : 0
                let second = Int(elapsed / 1_000_000_000)
                while perSecond.count <= second { perSecond.append(0) }
                perSecond[second] += 1
                if !frame.header.isError {
                    let tenth = Int(elapsed / 100_000_000)
                    while successesPerTenth.count <= tenth { successesPerTenth.append(0) }
                    successesPerTenth[tenth] += 1
                }
            }
            if followsPrimary, let errorCode, [.moved, .notPrimary, .outcomeUnknown, .shuttingDown, .loading].contains(errorCode) {
                // This node no longer takes the run's requests: the runner connects to the primary.
                giveUp(context: context)
                return
            }
            if running, case .closedLoop = mode { enqueue(at: now) }
        }
        if buffer.readableBytes > 0 { cumulation = buffer }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flush(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakePromise?.fail(LearnStoreError(.connectionFailed, "the server closed the connection during the handshake"))
        handshakePromise = nil
        running = false
        finished = true
        if recording { unanswered += inFlight.count }
        inFlight.removeAll()
        context.fireChannelInactive()
    }

    private func giveUp(context: ChannelHandlerContext) {
        running = false
        finished = true
        openLoopTask?.cancel()
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        handshakePromise?.fail(LearnStoreError(.connectionFailed, "\(error)"))
        handshakePromise = nil
        context.close(promise: nil)
    }
}

/// One load-generating connection: connect, HELLO + AUTH, then run.
final class LoadConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<LoadDriverHandler>

    /// Connects and completes the handshake; a refused token or an unreachable server fails here at once.
    static func connect(host: String, port: Int, group: any EventLoopGroup, token: String, mode: LoadDriverHandler.Mode,
                        kinds: Int, sequencedKinds: Set<Int> = [], followsPrimary: Bool = false,
                        source: @escaping @Sendable () -> LoadRequestSource) async throws(LearnStoreError) -> LoadConnection {
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(.seconds(5))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port).get()
        } catch {
            throw LearnStoreError(.connectionFailed, "cannot connect to \(host):\(port): \(error)")
        }
        do {
            let bound = try await channel.eventLoop.submit {
                let handler = LoadDriverHandler(
                    hello: HelloRequest(clientName: "learnstore-bench"), token: token, mode: mode, kinds: kinds, sequencedKinds: sequencedKinds,
                    followsPrimary: followsPrimary, source: source())
                try channel.pipeline.syncOperations.addHandler(handler)
                let context = try channel.pipeline.syncOperations.context(handler: handler)
                let promise = channel.eventLoop.makePromise(of: Void.self)
                handler.performHandshake(context: context, promise: promise)
                return (NIOLoopBound(handler, eventLoop: channel.eventLoop), promise.futureResult)
            }.get()
            try await bound.1.get()
            return LoadConnection(channel: channel, handler: bound.0)
        } catch let error as LearnStoreError {
            try? await channel.close()
            throw error
        } catch {
            try? await channel.close()
            throw LearnStoreError(.connectionFailed, "\(error)")
        }
    }

    init(channel: any Channel, handler: NIOLoopBound<LoadDriverHandler>) {
        self.channel = channel
        self.handler = handler
    }

    func start() {
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            if let context = try? channel.pipeline.syncOperations.context(handler: handler.value) {
                handler.value.start(context: context)
            }
        }
    }

    /// Starts measuring; returns when the recording began (see ``LoadDriverHandler/beginRecording(since:)``).
    @discardableResult
    func beginRecording(since: UInt64? = nil) async -> UInt64? {
        let handler = self.handler
        return try? await channel.eventLoop.submit { () -> UInt64? in
            handler.value.beginRecording(since: since)
            return handler.value.recordingStart
        }.get()
    }

    /// Closed, or given up for another primary: the runner replaces it (with `--seeds`).
    var isFinished: Bool {
        get async {
            let handler = self.handler
            return (try? await channel.eventLoop.submit { handler.value.finished }.get()) ?? true
        }
    }

    /// What was measured so far (the run goes on).
    func peek() async -> LoadConnectionResult? {
        let handler = self.handler
        return try? await channel.eventLoop.submit { handler.value.result }.get()
    }

    /// Stops sending and returns what was measured while recording.
    func stop() async -> LoadConnectionResult? {
        let handler = self.handler
        let result = try? await channel.eventLoop.submit { () -> LoadConnectionResult in
            handler.value.stop()
            return handler.value.result
        }.get()
        try? await channel.close()
        return result
    }
}
