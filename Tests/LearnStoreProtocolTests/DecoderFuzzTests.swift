import Foundation
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport
import NIOCore
import Testing

/// Bounded fuzzing of the frame decoder and every payload decoder, run in CI. Scale it up with
/// `LEARNSTORE_FUZZ_ITERATIONS=5000000 swift test --filter DecoderFuzzTests` (and pick another seed
/// with `LEARNSTORE_FUZZ_SEED`). Nothing may crash; every rejection must be a typed error whose
/// offset lies inside the input; every accepted payload must survive its own re-encoding.
@Suite struct DecoderFuzzTests {
    static let defaultIterations = 100_000

    @Test func mutatedFramesNeverCrashTheDecodersAndFailWithTypedErrors() async throws {
        try await offTheCooperativePool { try Self.fuzzDecoders() }
    }

    static func fuzzDecoders() throws {
        let iterations = TestEnvironment.integer("LEARNSTORE_FUZZ_ITERATIONS", default: Self.defaultIterations)
        let seed = UInt64(TestEnvironment.integer("LEARNSTORE_FUZZ_SEED", default: 20_250_615))
        let decoder = FrameDecoder(maximumFrameBytes: 1 << 16)
        let targets = FuzzTarget.all
        var random = SeededGenerator(seed: seed)
        var problems: [String] = []
        var counts = (frames: 0, framingErrors: 0, decoderRuns: 0, decoded: 0, rejected: 0)
        let started = ContinuousClock.now

        for iteration in 0..<iterations {
            let target = targets[Int.random(in: 0..<targets.count, using: &random)]
            let valid = target.generate(&random)
            var frame = ByteWriter()
            frame.writeFrame(FrameHeader(opcode: target.opcode, flags: random.chance(1, in: 8) ? 1 : 0, requestID: UInt32(truncatingIfNeeded: random.next()))) {
                $0.writeBytes(valid)
            }
            let bytes: [UInt8]
            switch Int.random(in: 0..<20, using: &random) {
            case 0: bytes = random.bytes(Int.random(in: 0...64, using: &random))  // pure garbage
            case 1: bytes = frame.bytes  // the valid frame itself
            default: bytes = FrameMutator.mutate(frame.bytes, &random)
            }
            counts.frames += 1

            // Framing: the decoder must agree with the oracle however the bytes arrive.
            let expected = FramingOracle.steps(bytes, maximumFrameBytes: decoder.maximumFrameBytes)
            let chunk = random.chance(1, in: 4) ? Int.random(in: 1...16, using: &random) : max(1, bytes.count)
            let actual = FramingOracle.decoderSteps(bytes, chunkSize: chunk, decoder: decoder)
            if actual != expected && problems.count < 10 {
                problems.append("iteration \(iteration) (seed \(seed)): framing \(actual) != expected \(expected) for \(hex(bytes.prefix(64)))")
            }
            if case .error = expected.last { counts.framingErrors += 1 }

            // Payloads: the target's own decoder on what follows the header, plus two others, and
            // now and then every decoder.
            let payload = Array(bytes.dropFirst(FrameHeader.size))
            var chosen = [target]
            if random.chance(1, in: 16) {
                chosen = targets
            } else {
                for _ in 0..<2 { chosen.append(targets[Int.random(in: 0..<targets.count, using: &random)]) }
            }
            for decoderTarget in chosen {
                counts.decoderRuns += 1
                switch decoderTarget.check(payload) {
                case .decoded: counts.decoded += 1
                case .rejected: counts.rejected += 1
                case .problem(let message):
                    if problems.count < 10 {
                        problems.append("iteration \(iteration) (seed \(seed)), \(decoderTarget.name): \(message)\n  input: \(hex(payload.prefix(200)))")
                    }
                }
            }
        }
        for problem in problems { Issue.record(Comment(rawValue: problem)) }
        #expect(counts.frames == iterations)
        #expect(counts.decoded > iterations / 20 && counts.rejected > iterations / 20, "the corpus must produce both outcomes: \(counts)")
        let seconds = Double((ContinuousClock.now - started).components.attoseconds) / 1e18 + Double((ContinuousClock.now - started).components.seconds)
        print("DecoderFuzzTests: \(counts.frames) frames (\(counts.framingErrors) framing errors), \(counts.decoderRuns) payload decodes "
              + "(\(counts.decoded) accepted, \(counts.rejected) rejected), seed \(seed), \(String(format: "%.1f", seconds)) s")
    }

    @Test func theMutatorDamagesFramesInEveryWay() {
        var random = SeededGenerator(seed: 1)
        var frame = ByteWriter()
        frame.writeFrame(FrameHeader(opcode: Opcode.create, requestID: 1)) { RecordMessages.encodeCreate(fullBody, idempotencyKey: "k", into: &$0) }
        var outcomes: Set<String> = []
        for _ in 0..<2000 {
            let mutated = FrameMutator.mutate(frame.bytes, &random)
            switch FramingOracle.steps(mutated, maximumFrameBytes: 1 << 16).first {
            case .frame(let f): outcomes.insert(f.header.opcode == Opcode.create ? "frame" : "other opcode")
            case .needMore: outcomes.insert("incomplete")
            case .error(let code): outcomes.insert(code.name)
            case nil: break
            }
        }
        #expect(outcomes == ["frame", "other opcode", "incomplete", "BAD_FRAME", "FRAME_TOO_LARGE"])
    }
}

/// The fuzz checks themselves must be able to fail.
@Suite struct FuzzCheckTests {
    @Test func brokenDecodersAreCaught() {
        let outOfRange = FuzzTarget.verdict([1, 2]) { (r) throws(DecodeError) -> UInt8 in throw DecodeError(offset: 3, reason: "past the end") }
        #expect(outOfRange != .decoded && outOfRange != .rejected)
        let unstable = FuzzTarget.verdict([1]) { (r) throws(DecodeError) in try r.readU8() } reencode: { value, writer in writer.writeU8(value &+ 1) }
        #expect(unstable != .decoded && unstable != .rejected)
        let stable = FuzzTarget.verdict([1]) { (r) throws(DecodeError) in try r.readU8() } reencode: { value, writer in writer.writeU8(value) }
        #expect(stable == .decoded)
        #expect(FuzzTarget.verdict([]) { (r) throws(DecodeError) in try r.readU8() } == .rejected)
    }

    @Test func theFramingOracleDisagreesWithAWrongLimit() {
        var frame = ByteWriter()
        frame.writeFrame(FrameHeader(opcode: Opcode.ping, requestID: 1)) { $0.writeBytes([UInt8](repeating: 0, count: 100)) }
        let expected = FramingOracle.steps(frame.bytes, maximumFrameBytes: 110)
        #expect(expected.first == .frame(DecodedFrame(FrameHeader(opcode: Opcode.ping, requestID: 1), [UInt8](repeating: 0, count: 100))))
        #expect(FramingOracle.decoderSteps(frame.bytes, chunkSize: 7, decoder: FrameDecoder(maximumFrameBytes: 110)) == expected)
        #expect(FramingOracle.decoderSteps(frame.bytes, chunkSize: 7, decoder: FrameDecoder(maximumFrameBytes: 109)) != expected)
    }
}
