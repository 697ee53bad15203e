import Foundation
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import Testing

/// Mutations of valid frames, the kinds of damage a network, a buggy client or an attacker produce.
enum FrameMutator {
    static let interestingBytes: [UInt8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF]
    static let interestingWords: [UInt32] = [0, 1, 5, 6, 0x7F, 0x80, 0xFFFF, 1 << 23, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]

    /// Sets the length field to what the bytes after it really are (so framing holds and only the
    /// payload is damaged).
    static func fixLength(_ bytes: inout [UInt8]) {
        guard bytes.count >= 4 else { return }
        let length = UInt32(bytes.count - 4)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(index))) }
    }

    static func setLength(_ bytes: inout [UInt8], _ length: UInt32) {
        while bytes.count < 4 { bytes.append(0) }
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(index))) }
    }

    /// One to three mutations of `frame`.
    static func mutate(_ frame: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = frame
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let payloadStart = min(bytes.count, FrameHeader.size)
            switch Int.random(in: 0..<12, using: &random) {
            case 0:  // flip bits anywhere
                guard !bytes.isEmpty else { continue }
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
                }
            case 1:  // flip bits in the payload only, framing intact
                guard bytes.count > payloadStart else { continue }
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: payloadStart..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
                }
            case 2:  // truncate (the length field still promises the rest)
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &random))
            case 3:  // truncate the payload and fix the length
                guard bytes.count > payloadStart else { continue }
                bytes.removeLast(Int.random(in: 1...(bytes.count - payloadStart), using: &random))
                fixLength(&bytes)
            case 4:  // extend with random bytes, length fixed or not
                bytes += random.bytes(Int.random(in: 1...64, using: &random))
                if random.chance(1, in: 2) { fixLength(&bytes) }
            case 5:  // a random opcode (framing intact)
                if bytes.count > 4 { bytes[4] = UInt8.random(in: 0...255, using: &random) }
            case 6:  // a random payload behind a valid header
                bytes = Array(bytes.prefix(payloadStart)) + random.bytes(Int.random(in: 0...256, using: &random))
                fixLength(&bytes)
            case 7:  // an absurd length
                let length = UInt32(max(0, bytes.count - 4))
                let choices: [UInt32] = [0, 1, 5, 6, length &- 1, length &+ 1, 1 << 16, (1 << 16) - 3, 1 << 24, .max,
                                         UInt32.random(in: 0...UInt32.max, using: &random)]
                setLength(&bytes, choices.randomElement(using: &random)!)
            case 8:  // an interesting byte in the payload
                guard bytes.count > payloadStart else { continue }
                bytes[Int.random(in: payloadStart..<bytes.count, using: &random)] = interestingBytes.randomElement(using: &random)!
            case 9:  // an interesting 32-bit word (bitmaps, counts) in the payload
                guard bytes.count >= payloadStart + 4 else { continue }
                let at = Int.random(in: payloadStart...(bytes.count - 4), using: &random)
                let word = interestingWords.randomElement(using: &random)!
                for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: word >> (8 * UInt32(index))) }
            case 10:  // a runaway varint, or an enormous one, inserted into the payload
                let at = Int.random(in: payloadStart...bytes.count, using: &random)
                let varint: [UInt8] = random.chance(1, in: 2) ? [UInt8](repeating: 0xFF, count: Int.random(in: 1...12, using: &random))
                                                               : [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
                bytes.insert(contentsOf: varint, at: at)
                fixLength(&bytes)
            default:  // delete or duplicate a range of the payload
                guard bytes.count > payloadStart else { continue }
                let start = Int.random(in: payloadStart..<bytes.count, using: &random)
                let end = Int.random(in: start...min(bytes.count, start + 32), using: &random)
                if random.chance(1, in: 2) {
                    bytes.removeSubrange(start..<end)
                } else {
                    bytes.insert(contentsOf: bytes[start..<end], at: end)
                }
                fixLength(&bytes)
            }
        }
        return bytes
    }
}

/// What a frame decoder must make of a stream, computed independently from the length field.
enum FramingOracle {
    enum Step: Equatable {
        case frame(DecodedFrame)
        case needMore
        case error(LearnStoreError.Code)
    }

    static func steps(_ bytes: [UInt8], maximumFrameBytes: Int) -> [Step] {
        var steps: [Step] = []
        var offset = 0
        while true {
            guard bytes.count - offset >= 4 else { return steps + [.needMore] }
            let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
            if length < 6 { return steps + [.error(.badFrame)] }
            if length + 4 > maximumFrameBytes { return steps + [.error(.frameTooLarge)] }
            guard bytes.count - offset >= length + 4 else { return steps + [.needMore] }
            let header = FrameHeader(
                opcode: bytes[offset + 4], flags: bytes[offset + 5],
                requestID: UInt32(bytes[offset + 6]) | UInt32(bytes[offset + 7]) << 8 | UInt32(bytes[offset + 8]) << 16 | UInt32(bytes[offset + 9]) << 24)
            steps.append(.frame(DecodedFrame(header, Array(bytes[(offset + 10)..<(offset + 4 + length)]))))
            offset += length + 4
        }
    }

    /// The decoder's steps on `bytes` delivered in `chunks` pieces.
    static func decoderSteps(_ bytes: [UInt8], chunkSize: Int, decoder: FrameDecoder) -> [Step] {
        var steps: [Step] = []
        var buffer = ByteBuffer()
        var start = 0
        repeat {
            let end = min(bytes.count, start + chunkSize)
            buffer.writeBytes(bytes[start..<end])
            start = end
            do {
                while let frame = try decoder.next(from: &buffer) { steps.append(.frame(DecodedFrame(frame))) }
            } catch {
                return steps + [.error(error.code)]
            }
        } while start < bytes.count
        return steps + [.needMore]
    }
}

/// Bounded fuzzing of the frame decoder and every payload decoder, run in CI. Scale it up with
/// `LEARNSTORE_FUZZ_ITERATIONS=5000000 swift test --filter DecoderFuzzTests` (and pick another seed
/// with `LEARNSTORE_FUZZ_SEED`). Nothing may crash; every rejection must be a typed error whose
/// offset lies inside the input; every accepted payload must survive its own re-encoding.
@Suite struct DecoderFuzzTests {
    static let defaultIterations = 100_000

    @Test func mutatedFramesNeverCrashTheDecodersAndFailWithTypedErrors() throws {
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
