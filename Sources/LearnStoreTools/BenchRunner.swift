import CanvasOutcomes
import Foundation
import Histogram
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTokens
import LearnStoreWorkload
import NIOCore
import NIOPosix
import Synchronization

/// Runs a load test against a LearnStore server with the bundled client (`learnstore bench`).
public final class BenchRunner: Sendable {
    public let configuration: BenchConfiguration
    let group: MultiThreadedEventLoopGroup
    let progress: @Sendable (String) -> Void

    /// Signs the run's tokens when the run was given the secret; keyed once for all of them.
    let minter: TokenMinter?
    /// With `--seeds`, where each tenant's setup requests went (by token): its primary, which in a
    /// partitioned cluster is that of the tenant's group.
    private let setupAddresses = Mutex<[String: (host: String, port: Int)]>([:])

    public init(configuration: BenchConfiguration, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.configuration = configuration
        if case .secret(let secret) = configuration.credentials { minter = TokenMinter(secret: secret) } else { minter = nil }
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.clientThreads))
        self.progress = progress
    }

    /// What each tenant's connections need to generate requests.
    struct TenantData: Sendable {
        var tenantID: String
        var token: String
        var ids: [RecordID]
        var persons: [UUID16]
        var bodies: [RecordBody]
        var course: CanvasCourseDataset?
        var ingestBatches: [[[UInt8]]]
    }

    public func run() async throws -> BenchReport {
        do {
            let report = try await runUnchecked()
            try? await group.shutdownGracefully()
            return report
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    func runUnchecked() async throws -> BenchReport {
        try configuration.validate()
        // Exactly --preload records, split over the tenants; without a preload, a template of 2,000
        // per tenant for the records a create workload sends.
        let dataset = PeerDataset(records: configuration.preload > 0 ? configuration.preload : configuration.tenants * 2000,
                                  tenants: configuration.tenants, seed: configuration.seed)
        var tenants = try await prepareTenants(dataset)
        var report = BenchReport(configuration: configuration)
        if configuration.preload > 0 {
            let (seconds, ids) = try await preload(dataset, tenants: tenants)
            report.preloadSeconds = seconds
            report.preloadRecords = configuration.preload
            for index in tenants.indices { tenants[index].ids += ids[index] }
            if configuration.preloadOnly { return report }
        }
        let workloads = Set(configuration.mix.map(\.0))
        let needsIDs = workloads.contains(where: \.needsRecordIDs)
        // Without a preload in this run the data set's persons are unknown here (the dataset above
        // is only a template for new records): list them from the server, so that lists and
        // creates spread over all of the tenant's persons.
        let needsPersons = configuration.preload == 0 && workloads.contains(where: \.needsPersons)
        if needsIDs || needsPersons {
            for index in tenants.indices where needsPersons || tenants[index].ids.isEmpty {
                let (ids, persons) = try await discoverRecords(tenants[index])
                if needsIDs && tenants[index].ids.isEmpty {
                    guard !ids.isEmpty else {
                        throw LearnStoreError.validation("tenant \(tenants[index].tenantID) has no records to read; use --preload N")
                    }
                    tenants[index].ids = ids
                }
                if needsPersons && !persons.isEmpty { tenants[index].persons = persons }
            }
        }
        if workloads.contains(.rollup) {
            for index in tenants.indices { try await ingestCourse(&tenants[index]) }
        }
        return try await measure(tenants, report: report)
    }

    // MARK: preparation

    func token(for tenantID: String, app: String? = nil) throws -> String {
        switch configuration.credentials {
        case .token(let token): return token
        case .secret:
            return try minter!.mintNow(
                tenantID: tenantID, person: UUID16(high: 0xBE7C, low: 1), appID: app,
                scopes: [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin],
                issuedAt: Timestamp(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), lifetimeSeconds: 86_400)
        }
    }

    /// Where a tenant's setup requests go: --host and --port, or with --seeds the primary they name
    /// for the tenant (found once per tenant).
    func setupAddress(token: String) async -> (host: String, port: Int) {
        guard !configuration.seeds.isEmpty else { return (configuration.host, configuration.port) }
        if let known = setupAddresses.withLock({ $0[token] }) { return known }
        guard let found = await primaryAddress(token: token) else { return (configuration.host, configuration.port) }
        setupAddresses.withLock { $0[token] = found }
        return found
    }

    /// A server that is still recovering answers data requests with LOADING: wait for it (up to
    /// five minutes, saying so), rather than fail a run started right after the server.
    func waitWhileLoading(token: String) async throws {
        let (host, port) = await setupAddress(token: token)
        let client = try await LearnStoreClient(ClientConfiguration(host: host, port: port, token: token, connections: 1))
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now + .seconds(300)
        var said = false
        while true {
            let failure: LearnStoreError
            do {
                _ = try await client.performance.learningRecords.stats()
                return
            } catch {
                failure = error
            }
            guard failure.code == .loading, ContinuousClock.now < deadline else { throw failure }
            if !said { progress("\(failure.message): waiting (up to 5 minutes)"); said = true }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// Checks the server and the credentials at once (a wrong port or token fails here, not later).
    func prepareTenants(_ dataset: PeerDataset) async throws -> [TenantData] {
        var tenants: [TenantData] = []
        let count: Int
        switch configuration.credentials {
        case .token: count = 1
        case .secret: count = configuration.tenants
        }
        // Bodies for creates, pre-generated: at most 2 million in all, so 100,000 tenants fit.
        let bodiesPerTenant = max(1, min(20_000, 2_000_000 / count))
        for index in 0..<count {
            let token = try token(for: PeerDataset.tenantID(index))
            let tenantID: String
            if index == 0 {
                // The first tenant checks the server and the credentials; minted tokens name the rest.
                let (host, port) = await setupAddress(token: token)
                let connection = try await ClientConnection.connect(host: host, port: port, group: group)
                let identity = try await connection.authenticate(token: token)
                await connection.close()
                tenantID = identity.identity.tenantID
                try await waitWhileLoading(token: token)
            } else {
                tenantID = PeerDataset.tenantID(index)
            }
            let range = dataset.records(ofTenant: index)
            let persons = Array(Set(range.map { PeerDataset.personID(dataset.personIndex(ofRecord: $0)) })).sorted()
            let bodies = range.prefix(bodiesPerTenant).map { dataset.item($0).body }
            tenants.append(TenantData(tenantID: tenantID, token: token, ids: [], persons: persons, bodies: bodies, course: nil, ingestBatches: []))
        }
        let events = configuration.mix.contains { $0.0 == .outcomesIngest }
        if events {
            for index in tenants.indices {
                let course = CanvasCourseDataset(students: 200, outcomes: 20, resultsPerOutcome: 5, seed: configuration.seed &+ UInt64(index), courseID: String(91_000 + index))
                let lines = course.eventLines(shuffleSeed: configuration.seed).map { Array($0.utf8) }
                var batches: [[[UInt8]]] = []
                var start = 0
                while start < lines.count {
                    batches.append(Array(lines[start..<min(lines.count, start + configuration.eventsPerIngest)]))
                    start += configuration.eventsPerIngest
                }
                // A data set the server would refuse would measure only the rejection path.
                for line in batches.first ?? [] {
                    do { _ = try OutcomeEvent.parse(bytes: line) } catch {
                        throw BenchSetupError("the generated outcome events are invalid: \(error)")
                    }
                }
                tenants[index].ingestBatches = batches
            }
        }
        return tenants
    }

    /// One request of the bulk load (CREATE_BATCH, or IMPORT with the ids it puts), encoded (and its
    /// token minted) before the clock starts.
    struct PreloadBatch: Sendable {
        var app: String?
        var token: String
        var count: Int
        var payload: [UInt8]
        var opcode = Opcode.createBatch
        /// The records' ids, for an IMPORT (whose answer does not repeat them).
        var ids: [RecordID] = []
    }

    /// The bulk load's requests for every tenant, generated and encoded ahead of time, so the clock
    /// measures the server and the wire, not record generation (the other stores in the comparison
    /// load from files of requests built beforehand too).
    func preloadBatches(_ dataset: PeerDataset, tenants: [TenantData]) throws -> [[PreloadBatch]] {
        let minting: Bool
        if case .secret = configuration.credentials { minting = true } else { minting = false }
        return try tenants.indices.map { index in
            let range = dataset.records(ofTenant: index)
            if configuration.preloadVia == .import {
                return try importBatches(range.map { dataset.record($0) }, token: token(for: tenants[index].tenantID))
            }
            var byApp: [String?: [RecordBody]] = [:]
            for i in range {
                let item = dataset.item(i)
                byApp[minting ? item.appID : nil, default: []].append(item.body)
            }
            var batches: [PreloadBatch] = []
            for (app, bodies) in byApp.sorted(by: { ($0.key ?? "") < ($1.key ?? "") }) {
                let token = try token(for: tenants[index].tenantID, app: app)
                var offset = 0
                while offset < bodies.count {
                    let slice = Array(bodies[offset..<min(bodies.count, offset + 1000)])
                    var writer = ByteWriter(capacity: slice.count * 320)
                    RecordMessages.encodeCreateBatch(slice, idempotencyKey: nil, into: &writer)
                    batches.append(PreloadBatch(app: app, token: token, count: slice.count, payload: writer.bytes))
                    offset += 1000
                }
            }
            return batches
        }
    }

    /// IMPORT requests of a thousand records each, in (created_at, id) order: a record imported
    /// before one already stored would make the server rebuild the tenant's order.
    func importBatches(_ records: [LearningRecord], token: String) -> [PreloadBatch] {
        let sorted = records.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        return stride(from: 0, to: sorted.count, by: 1000).map { offset in
            let slice = Array(sorted[offset..<min(sorted.count, offset + 1000)])
            var writer = ByteWriter(capacity: slice.count * 360)
            AdminMessages.encodeImport(records: slice, outcomeRows: [], into: &writer)
            return PreloadBatch(app: nil, token: token, count: slice.count, payload: writer.bytes, opcode: Opcode.adminImport, ids: slice.map(\.id))
        }
    }

    /// Bulk load: the data set's records, created through CREATE_BATCH (1000 per request),
    /// app-scoped records with a token of their app. Each tenant's batches are dealt into up to four
    /// shares (one per thousand records, so a small tenant's records go over a single connection); `-c` connections work through the shares in tenant order, one connection per share
    /// (a connection keeps its tenant), authenticating again when the app changes. So a load into
    /// 100,000 small tenants keeps `-c` connections open, not one per tenant.
    /// The clock covers sending the pre-encoded requests and reading the created records back.
    func preload(_ dataset: PeerDataset, tenants: [TenantData]) async throws -> (Double, [[RecordID]]) {
        progress("preloading \(configuration.preload) records into \(tenants.count) tenants")
        let prepared = try preloadBatches(dataset, tenants: tenants)
        let shares: [(tenant: Int, batches: [PreloadBatch])] = prepared.enumerated().flatMap { tenant, batches in
            let records = batches.reduce(0) { $0 + $1.count }
            let count = min(4, batches.count, max(1, records / 1000))
            return (0..<count).map { share in
                (tenant, batches.enumerated().filter { $0.offset % count == share }.map(\.element))
            }
        }
        let lanes = max(1, min(configuration.connections, shares.count))
        let start = ContinuousClock.now
        let shared = PreloadState(tenants: tenants.count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<lanes {
                group.addTask {
                    while true {
                        let next = shared.next.wrappingAdd(1, ordering: .relaxed).oldValue
                        guard next < shares.count else { break }
                        let (tenant, batches) = shares[next]
                        let (host, port) = await self.setupAddress(token: tenants[tenant].token)
                        let connection = try await ClientConnection.connect(host: host, port: port, group: self.group)
                        var currentApp: String?? = .none
                        var ids: [RecordID] = []
                        // Pipelined, at most 16 requests in flight: an AUTH for a batch of another app
                        // goes out right before it, without waiting for its answer.
                        var inFlight: [(response: ClientConnection.PendingResponse, batch: PreloadBatch?)] = []
                        func settleOldest() async throws {
                            let (pending, batch) = inFlight.removeFirst()
                            let frame = try await pending.response()
                            guard let batch else { return }
                            if batch.opcode == Opcode.adminImport {
                                let report = try frame.readPayload { (r) throws(DecodeError) in try AdminMessages.decodeImportResponse(from: &r) }
                                guard report.records == batch.count else {
                                    throw LearnStoreError.validation("IMPORT put \(report.records) of \(batch.count) records")
                                }
                                ids += batch.ids
                            } else {
                                let (_, _, created) = try frame.readPayload { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponseIDs(from: &r) }
                                ids += created
                            }
                            let total = shared.done.wrappingAdd(batch.count, ordering: .relaxed).newValue
                            if total % 50_000 < batch.count { self.progress("preloaded \(total) records") }
                        }
                        for batch in batches {
                            if currentApp != .some(batch.app) {
                                inFlight.append((connection.start(opcode: Opcode.auth) { AuthRequest(token: batch.token).encode(into: &$0) }, nil))
                                currentApp = .some(batch.app)
                            }
                            inFlight.append((connection.start(opcode: batch.opcode) { $0.writeBytes(batch.payload) }, batch))
                            while inFlight.count >= 16 { try await settleOldest() }
                        }
                        while !inFlight.isEmpty { try await settleOldest() }
                        await connection.close()
                        shared.results.withLock { $0[tenant] += ids }
                    }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Self.seconds(ContinuousClock.now - start)
        return (seconds, shared.results.withLock { $0 })
    }

    final class PreloadState: Sendable {
        let done = Atomic<Int>(0)
        /// The next share of the bulk load to send.
        let next = Atomic<Int>(0)
        let results: Mutex<[[RecordID]]>
        init(tenants: Int) { results = Mutex(Array(repeating: [], count: tenants)) }
    }

    /// The ids (up to 200 000) and the persons of a tenant's records, read with the client's list.
    func discoverRecords(_ tenant: TenantData) async throws -> (ids: [RecordID], persons: [UUID16]) {
        let (host, port) = await setupAddress(token: tenant.token)
        let client = try await LearnStoreClient(ClientConfiguration(host: host, port: port, token: tenant.token, connections: 1))
        defer { Task { await client.shutdown() } }
        var ids: [RecordID] = []
        var persons = Set<UUID16>()
        for try await record in client.performance.learningRecords.list(ListQuery(includeDeleted: true, limit: 1000)) {
            ids.append(record.id)
            persons.insert(record.personID)
            if ids.count >= 200_000 { break }
        }
        return (ids, persons.sorted())
    }

    static func requireAccepted(_ report: OutcomeIngestReport) throws {
        if let (index, rejection) = report.rejected.first {
            throw BenchSetupError("the server refused event \(index) of the rollup course: \(rejection)")
        }
    }

    /// A course of 100 outcomes per tenant for the rollup workload.
    func ingestCourse(_ tenant: inout TenantData) async throws {
        let course = CanvasCourseDataset(students: 50, outcomes: 100, resultsPerOutcome: 5, seed: configuration.seed, courseID: "90000")
        let (host, port) = await setupAddress(token: tenant.token)
        let client = try await LearnStoreClient(ClientConfiguration(host: host, port: port, token: tenant.token, connections: 1))
        let lines = course.eventLines().map { Array($0.utf8) }
        var start = 0
        while start < lines.count {
            let report = try await client.outcomes.ingest(Array(lines[start..<min(lines.count, start + 500)]))
            try Self.requireAccepted(report)
            start += 500
        }
        await client.shutdown()
        tenant.course = course
    }

    // MARK: the measured run

    func makeSource(_ tenant: TenantData, seed: UInt64) -> @Sendable () -> LoadRequestSource {
        let mix = configuration.mix
        return {
            let generator = RequestGenerator(mix: mix, ids: tenant.ids, persons: tenant.persons, bodies: tenant.bodies,
                                             ingestBatches: tenant.ingestBatches, course: tenant.course, seed: seed)
            return { writer in generator.next(into: &writer) }
        }
    }

    func measure(_ tenants: [TenantData], report initial: BenchReport) async throws -> BenchReport {
        var report = initial
        let mode: LoadDriverHandler.Mode
        if let rate = configuration.rate {
            mode = .openLoop(requestsPerSecond: rate / Double(configuration.connections))
        } else {
            mode = .closedLoop(depth: configuration.pipeline)
        }
        let probe = configuration.subscribers > 0
            ? try await FeedDeliveryProbe.start(count: configuration.subscribers, host: configuration.host, port: configuration.subscribePort ?? configuration.port,
                                                tokens: tenants.map(\.token))
            : nil
        let sequencedKinds = probe == nil ? [] : Set(configuration.mix.enumerated().filter { $0.element.0.isSequencedWrite }.map(\.offset))
        let following = !configuration.seeds.isEmpty
        func connect(_ index: Int, host: String, port: Int) async throws(LearnStoreError) -> LoadConnection {
            let tenant = tenants[index % tenants.count]
            // A replacement continues the connection's request stream with a seed of its own.
            func attempt(_ host: String, _ port: Int) async throws(LearnStoreError) -> LoadConnection {
                try await LoadConnection.connect(
                    host: host, port: port, group: group, token: tenant.token, mode: mode,
                    kinds: configuration.mix.count, sequencedKinds: sequencedKinds, followsPrimary: following,
                    source: makeSource(tenant, seed: configuration.seed &+ UInt64(index) &* 7919 &+ UInt64(reconnects) &* 104_729))
            }
            do {
                return try await attempt(host, port)
            } catch where following && error.code == .moved {
                // A partitioned cluster: the tenant lives in another group, whose primary AUTH named.
                guard let address = error.primaryAddress, let (movedHost, movedPort) = HostPort.split(address) else { throw error }
                return try await attempt(movedHost, movedPort)
            }
        }
        var reconnects = 0
        /// Connections that replaced one during the run (by index).
        var replacements = Set<Int>()
        var connections: [LoadConnection] = []
        for index in 0..<configuration.connections {
            connections.append(try await connect(index, host: configuration.host, port: configuration.measurePort ?? configuration.port))
        }
        progress("running \(configuration.mix.map { "\($0.0.rawValue)=\($0.1)" }.joined(separator: ",")) on \(connections.count) connections")
        var recordingStart: UInt64?
        func beginRecording() async {
            for connection in connections {
                let started = await connection.beginRecording(since: recordingStart)
                recordingStart = recordingStart ?? started
            }
        }
        // Without a warm-up, every request is measured, the first ones included.
        if configuration.warmupSeconds == 0 { await beginRecording() }
        for connection in connections { connection.start() }
        if configuration.warmupSeconds > 0 {
            await pause(milliseconds: Int(configuration.warmupSeconds * 1000))
            await beginRecording()
        }
        /// What connections replaced during the run measured, by connection index.
        var retired: [(connection: Int, result: LoadConnectionResult)] = []
        let cpuBefore = configuration.serverPID.flatMap(ProcessCPU.seconds(pid:))
        let start = ContinuousClock.now
        let duration = configuration.durationSeconds ?? (configuration.requests == nil ? 10 : 3600)
        var lastTotal = 0
        var lastTick = start
        while true {
            await pause(milliseconds: 250)
            let elapsed = Self.seconds(ContinuousClock.now - start)
            if following {
                let replaced = await replaceFinished(
                    &connections, retired: &retired, recordingStart: recordingStart, token: { tenants[$0 % tenants.count].token }
                ) { index, host, port throws(LearnStoreError) in
                    try await connect(index, host: host, port: port)
                }
                reconnects += replaced.count
                replacements.formUnion(replaced)
            }
            let snapshot = await collect(connections, retired: retired, stop: false)
            let total = snapshot.completed.reduce(0, +)
            if ContinuousClock.now - lastTick >= .seconds(1) {
                let rate = Double(total - lastTotal) / Self.seconds(ContinuousClock.now - lastTick)
                let p99 = snapshot.merged.totalCount > 0 ? Double(snapshot.merged.valueAtPercentile(99)) / 1e6 : 0
                progress(String(format: "%6.1f s  %10.0f ops/s  p99 %7.3f ms  errors %d", elapsed, rate, p99, snapshot.errors.values.reduce(0, +)))
                lastTotal = total
                lastTick = ContinuousClock.now
            }
            if let requests = configuration.requests, total >= requests { break }
            if elapsed >= duration { break }
        }
        let elapsed = Self.seconds(ContinuousClock.now - start)
        let cpuAfter = configuration.serverPID.flatMap(ProcessCPU.seconds(pid:))
        let final = await collect(connections, retired: retired, stop: true)
        report.seconds = elapsed
        report.fill(from: final, kinds: configuration.mix.map(\.0))
        report.reconnects = reconnects
        report.successesAfterReconnect = replacements.reduce(0) { $0 + (final.successes[$1] ?? 0) }
        if let probe {
            var acknowledgements: [Int: [UInt64: UInt64]] = [:]
            for (index, acks) in final.acknowledgements {
                for ack in acks { acknowledgements[index % tenants.count, default: [:]][ack.sequence] = ack.at }
            }
            report.feed = await probe.finish(acknowledgements: acknowledgements)
        }
        if let cpuBefore, let cpuAfter { report.serverCPUSeconds = cpuAfter - cpuBefore }
        return report
    }

    struct Snapshot {
        var histograms: [Histogram<UInt64>]
        var merged: Histogram<UInt64>
        var completed: [Int]
        var errors: [UInt16: Int]
        var errorNames: [UInt16: String]
        var perSecond: [Int]
        /// Per connection (by its index; a replaced connection's index appears once per connection that held it).
        var acknowledgements: [(connection: Int, acks: [(sequence: UInt64, at: UInt64)])] = []
        var successesPerTenth: [Int] = []
        var unanswered = 0
        /// Replies without an error, per live connection (by index).
        var successes: [Int: Int] = [:]
    }

    /// With `--seeds`: replaces each connection that is finished (its node refused the run's requests
    /// or closed) by one to the primary the seeds name now for its tenant (`token` gives a
    /// connection's; in a partitioned cluster tenants have different primaries). A connection that
    /// cannot be replaced yet (no primary named, or it refuses) is tried again at the next call.
    /// Returns the indices replaced.
    func replaceFinished(
        _ connections: inout [LoadConnection], retired: inout [(connection: Int, result: LoadConnectionResult)], recordingStart: UInt64?,
        token: (Int) -> String, connect: (Int, String, Int) async throws(LearnStoreError) -> LoadConnection
    ) async -> [Int] {
        var primaries: [String: (host: String, port: Int)] = [:]
        var replaced: [Int] = []
        for index in connections.indices where await connections[index].isFinished {
            let tenantToken = token(index)
            if primaries[tenantToken] == nil {
                guard let found = await primaryAddress(token: tenantToken) else { return replaced }
                primaries[tenantToken] = found
            }
            guard let primary = primaries[tenantToken], let fresh = try? await connect(index, primary.host, primary.port) else { return replaced }
            if let result = await connections[index].stop() { retired.append((index, result)) }
            if recordingStart != nil { await fresh.beginRecording(since: recordingStart) }
            fresh.start()
            connections[index] = fresh
            replaced.append(index)
        }
        return replaced
    }

    /// The primary's client address for `token`'s tenant as the first seed that answers names it; nil
    /// if none does.
    func primaryAddress(token: String) async -> (host: String, port: Int)? {
        let cluster = ClusterClient(seeds: configuration.seeds, configuration: ClientConfiguration(token: token, connections: 1))
        defer { Task { await cluster.shutdown() } }
        return try? await cluster.primaryHostPort()
    }

    func collect(_ connections: [LoadConnection], retired: [(connection: Int, result: LoadConnectionResult)] = [], stop: Bool) async -> Snapshot {
        let kinds = configuration.mix.count
        var snapshot = Snapshot(
            histograms: (0..<kinds).map { _ in Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three) },
            merged: Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three),
            completed: Array(repeating: 0, count: kinds), errors: [:], errorNames: [:], perSecond: [])
        var results: [(connection: Int, result: LoadConnectionResult?)] = []
        for (index, connection) in connections.enumerated() { results.append((index, stop ? await connection.stop() : await connection.peek())) }
        for (index, result) in results {
            guard let result else { continue }
            snapshot.successes[index] = result.completed.reduce(0, +) - result.errors.values.reduce(0, +)
        }
        for (index, result) in results + retired.map({ ($0.connection, Optional.some($0.result)) }) {
            guard let result else { continue }
            if stop { snapshot.acknowledgements.append((index, result.acknowledgements)) }
            snapshot.unanswered += result.unanswered
            for (tenth, count) in result.successesPerTenth.enumerated() {
                while snapshot.successesPerTenth.count <= tenth { snapshot.successesPerTenth.append(0) }
                snapshot.successesPerTenth[tenth] += count
            }
            for kind in 0..<kinds {
                snapshot.histograms[kind].add(result.histograms[kind])
                snapshot.merged.add(result.histograms[kind])
                snapshot.completed[kind] += result.completed[kind]
            }
            for (code, count) in result.errors { snapshot.errors[code, default: 0] += count }
            snapshot.errorNames.merge(result.errorNames) { a, _ in a }
            for (second, count) in result.perSecond.enumerated() {
                while snapshot.perSecond.count <= second { snapshot.perSecond.append(0) }
                snapshot.perSecond[second] += count
            }
        }
        return snapshot
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// CPU time of a process from /proc/PID/stat (utime + stime).
enum ProcessCPU {
    static func seconds(pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command: state is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// The bench could not prepare its data; running anyway would measure something else.
struct BenchSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
