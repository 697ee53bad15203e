import Foundation
import JWTKit
import LearnStoreClient
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTokens
import LearnStoreTestSupport
import Testing
@testable import LearnStoreServer

/// Values an attacker chose for times, over TCP against the real server: each gets a typed error and
/// the server goes on serving.
@Suite struct InputRangeServerTests {
    /// Claims with any numbers, signed with the test server's secret.
    struct RawClaims: JWTPayload {
        var tenant_id = "tenant_a"
        var sub = "5f0c1e2a-7b3d-4c9e-9a1b-000000000042"
        var scope = "records:read records:write"
        var exp: Double
        var nbf: Double?
        var iat: Double?
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    static func sign(_ claims: RawClaims) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: testSecret), digestAlgorithm: .sha256)
        return try await keys.sign(claims)
    }

    static func stillServes(_ server: TestServer, _ id: RecordID? = nil) async throws -> LearningRecord? {
        let client = try await server.client()
        defer { Task { await client.shutdown() } }
        #expect(try await client.ping() > .zero)
        guard let id else { return nil }
        return try await client.performance.learningRecords.get(id)
    }

    @Test func aPatchExpectingAnUpdatedAtOutsideTheRangeIsBadFrameAndTheServerGoesOn() async throws {
        let server = try await TestServer.start()
        let client = try await server.client()
        let record = try await client.performance.learningRecords.create(RecordBody(personID: UUID16(high: 1, low: 2), title: "mine")).value
        await client.shutdown()
        let raw = try RawConnection(port: server.port)
        #expect(await raw.handshake(token: try await server.token()).map { !$0.header.isError } == true)
        let values: [Int64] = [1 << 62, -(1 << 62), .min, .max, Timestamp.maximum.milliseconds + 1, Timestamp.minimum.milliseconds - 1]
        for (index, value) in values.enumerated() {
            raw.send(RawConnection.frame(Opcode.patch, id: UInt32(10 + index)) { writer in
                writer.writeRecordID(record.id)
                writer.writeU8(1)
                writer.writeI64(value)
                RecordCodec.encode(RecordBody(title: "changed"), into: &writer)
            })
            let reply = try #require(await raw.receiveFrame())
            #expect(reply.header.requestID == UInt32(10 + index))
            let error = raw.error(of: reply)
            #expect(error?.code == .badFrame, "\(value): \(String(describing: error))")
            #expect(error?.message.contains("byte 17") == true, "\(String(describing: error))")
        }
        #expect(try await Self.stillServes(server, record.id) == record)
        try await server.stop()
    }

    @Test func aTokenWithAClaimOutsideTheRangeIsUnauthenticatedAndTheServerGoesOn() async throws {
        let server = try await TestServer.start()
        let now = Double(server.clock.now().milliseconds / 1000)
        let tokens: [RawClaims] = [
            RawClaims(exp: 1e300), RawClaims(exp: 1.7e18), RawClaims(exp: 9.2233720368e15), RawClaims(exp: -1e300),
            RawClaims(exp: now + 600, nbf: 1e300), RawClaims(exp: now + 600, nbf: -1e300),
            RawClaims(exp: now + 600, iat: -1e300), RawClaims(exp: now + 600, iat: 1e300),
        ]
        for claims in tokens {
            // One connection each: the third failed AUTH on a connection closes it.
            let raw = try RawConnection(port: server.port)
            let reply = try #require(await raw.handshake(token: try await Self.sign(claims)))
            let error = raw.error(of: reply)
            #expect(error?.code == .unauthenticated, "\(claims): \(String(describing: error))")
            #expect(error?.message.contains("0001-01-01 ... 9999-12-31") == true, "\(String(describing: error))")
        }
        _ = try await Self.stillServes(server)
        try await server.stop()
    }

    @Test func aTokenExpiringAtTheLastInstantAuthenticatesWithinTheRange() async throws {
        let server = try await TestServer.start()
        let raw = try RawConnection(port: server.port)
        let reply = try #require(await raw.handshake(token: try await Self.sign(RawClaims(exp: 253_402_300_799))))
        #expect(!reply.header.isError, "\(String(describing: raw.error(of: reply)))")
        let response = try reply.payload.withByteReader { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }
        #expect(response.expiresAt == Timestamp(milliseconds: 253_402_300_799_000), "expires_at is the token's own exp, without the leeway")
        try await server.stop()
    }

    @Test(arguments: [Double.nan, .infinity, -.infinity, 1e300, -1e300, 9.2233720368e15, 253_402_300_800])
    func aClaimThatIsNoInstantInTheRangeIsRefused(seconds: Double) {
        #expect(TokenClaims.instant(ofSeconds: seconds) == nil)
    }

    @Test func claimsAtTheRangeEndsAreInstants() {
        #expect(TokenClaims.instant(ofSeconds: 253_402_300_799.999) == .maximum)
        #expect(TokenClaims.instant(ofSeconds: -62_135_596_800) == .minimum)
        #expect(TokenClaims.instant(ofSeconds: 1.5) == Timestamp(milliseconds: 1500))
    }

    @Test func aMintedLifetimePastTheRangeIsRefused() async {
        let minter = TokenMinter(secret: testSecret)
        await #expect(throws: LearnStoreError.self) {
            _ = try await minter.mint(tenantID: "t", person: UUID16(high: 1, low: 1), scopes: [.recordsRead],
                                      issuedAt: Timestamp(milliseconds: 0), lifetimeSeconds: .max)
        }
    }

    /// Runs `learnstore <command> FILE <arguments>` against `server` with `lines` as FILE (JSON Lines),
    /// then checks the first batch of 1000 is stored and the rest is not.
    static func runBatchedCommand(_ command: [String], lines: [String], arguments: [String], server: TestServer) async throws -> CommandLineRun {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let scratch = TemporaryDirectory(prefix: "learnstore-batch-")
        let directory = URL(fileURLWithPath: scratch.path)
        let file = directory.appendingPathComponent("input.jsonl")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: file)
        let run = try await CommandLineRun.run(
            command + [file.path, "--port", String(server.port), "--token", try await server.token()] + arguments, in: directory)
        #expect(run.status != 0)
        let client = try await server.client()
        let page = try await client.performance.learningRecords.page(ListQuery(limit: 1000))
        #expect(page.records.count == 1000 && page.nextCursor == nil, "the first batch is stored, the second is not")
        await client.shutdown()
        return run
    }

    @Test func aBatchErrorFromTheCommandLineNamesThePositionInTheWholeInput() async throws {
        let server = try await TestServer.start()
        let lines = (0..<1500).map { index in
            #"{"person_id":"5f0c1e2a-7b3d-4c9e-9a1b-000000000042","title":"R\#(index)","score":\#(index == 1200 ? 150 : 50)}"#
        }
        let run = try await Self.runBatchedCommand(["records", "create"], lines: lines, arguments: [], server: server)
        #expect(run.stderr.contains("record 1200: score"), "\(run.stderr)")
        #expect(run.stderr.contains("records 0 to 999, sent in earlier batches, are stored"), "\(run.stderr)")
        #expect(!run.stderr.contains("record 200:"))
        try await server.stop()
    }

    @Test func anImportErrorNamesTheLineOfTheBadRecord() async throws {
        let server = try await TestServer.start()
        let lines = (0..<1500).map { index in
            var record = LearningRecord(
                id: RecordID(milliseconds: 1_700_000_000_000 + UInt64(index), randomHigh: 1, randomLow: UInt64(index)), tenantID: "x",
                createdAt: Timestamp(milliseconds: 1_700_000_000_000 + Int64(index)),
                updatedAt: Timestamp(milliseconds: 1_700_000_000_000 + Int64(index)), personID: UUID16(high: 1, low: 2))
            record.title = "R\(index)"
            record.score = index == 1200 ? 150 : 50
            return record.json.serialized
        }
        let run = try await Self.runBatchedCommand(["import"], lines: lines, arguments: ["--online"], server: server)
        // Line 1201 holds the record at index 1200 of the file (index 200 of the second batch).
        #expect(run.stderr.contains("line 1201 (lr_"), "\(run.stderr)")
        #expect(run.stderr.contains("the 1000 lines before line 1001, sent in earlier batches, are imported"), "\(run.stderr)")
        try await server.stop()
    }

    @Test(arguments: [["--rate", "0"], ["--rate", "nan"], ["--rate", "0.5"], ["--warmup", "1e300"], ["--duration", "inf"]])
    func benchRefusesRatesAndDurationsItCannotSchedule(flags: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: CommandLineRun.binary.path), "build the learnstore binary first")
        let directory = FileManager.default.temporaryDirectory
        let run = try await CommandLineRun.run(["bench", "--token", "unused", "--port", "1"] + flags, in: directory)
        #expect(run.status == 2, "\(run.stderr)")
        #expect(run.stderr.contains(flags[0]), "\(run.stderr)")
    }
}
