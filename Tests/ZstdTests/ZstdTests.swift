import LearnStoreTestSupport
import Testing
@testable import Zstd

@Suite struct ZstdTests {
    func sample(_ count: Int) -> [UInt8] {
        var rng = SeededGenerator(seed: 7)
        let words = ["lr_01JDAWS7", "Coursera", "AWS Certified", "tenant_00003", "5f0c1e2a-7b3d", "\u{0}\u{1}"]
        var out: [UInt8] = []
        while out.count < count { out += Array(words[Int(rng.next() % UInt64(words.count))].utf8) }
        return Array(out.prefix(count))
    }

    @Test(arguments: [0, 1, 100, 200_000])
    func oneShotRoundTrip(size: Int) throws {
        let input = sample(size)
        let frame = try Zstd.compress(input, level: 1)
        #expect(try Zstd.decompress(frame, maxSize: size + 1) == input)
        if size > 1000 { #expect(frame.count < input.count / 2) }
    }

    @Test(arguments: [-1, 1, 3, 19])
    func levels(level: Int) throws {
        let input = sample(50_000)
        #expect(try Zstd.decompress(try Zstd.compress(input, level: level), maxSize: 50_000) == input)
    }

    @Test func invalidLevelIsTyped() {
        #expect(throws: ZstdError.self) { _ = try Zstd.compress([1, 2, 3], level: 1000) }
    }

    @Test func streamingRoundTripInChunks() throws {
        let input = sample(1_000_000)
        let compressor = try ZstdCompressor(level: 1)
        var frame: [UInt8] = []
        var offset = 0
        while offset < input.count {
            let end = min(input.count, offset + 77_777)
            try compressor.compress(Array(input[offset..<end]), into: &frame)
            offset = end
        }
        try compressor.compress([], into: &frame, end: true)
        let decompressor = try ZstdDecompressor()
        var out: [UInt8] = []
        var position = 0
        while position < frame.count {
            let end = min(frame.count, position + 4096)
            let consumed = try frame[position..<end].withUnsafeBytes { try decompressor.decompress($0, into: &out) }
            position += consumed
            if decompressor.isFrameComplete { break }
        }
        #expect(decompressor.isFrameComplete)
        #expect(out == input)
        #expect(try Zstd.decompress(frame, maxSize: input.count) == input)
    }

    @Test func corruptedFrameFailsWithTypedError() throws {
        let input = sample(10_000)
        var frame = try Zstd.compress(input)
        frame[frame.count / 2] ^= 0x5A
        do {
            _ = try Zstd.decompress(frame, maxSize: 20_000)
            Issue.record("corruption was not detected")
        } catch {
            #expect(error.kind == .corrupted)
        }
    }

    @Test func flippedChecksumIsDetected() throws {
        var frame = try Zstd.compress(sample(5_000))
        frame[frame.count - 1] ^= 0x01  // last 4 bytes are the content checksum
        #expect(throws: ZstdError.self) { _ = try Zstd.decompress(frame, maxSize: 10_000) }
    }

    @Test func truncatedFrameIsTyped() throws {
        let frame = try Zstd.compress(sample(5_000))
        do {
            _ = try Zstd.decompress(Array(frame.dropLast(7)), maxSize: 10_000)
            Issue.record("truncation was not detected")
        } catch {
            #expect(error.kind == .truncated || error.kind == .corrupted)
        }
    }

    @Test func garbageIsNotAFrame() {
        #expect(throws: ZstdError.self) { _ = try Zstd.decompress([1, 2, 3, 4, 5, 6, 7, 8, 9], maxSize: 100) }
    }

    @Test func outputLimitIsEnforced() throws {
        let frame = try Zstd.compress(sample(10_000))
        do {
            _ = try Zstd.decompress(frame, maxSize: 100)
            Issue.record("limit not enforced")
        } catch {
            #expect(error.kind == .tooLarge)
        }
    }
}

/// The one-shot calls reuse pooled contexts: a context must carry nothing from one frame to the next,
/// across levels, checksum settings and failed frames, and from thread to thread.
@Suite struct ZstdContextReuseTests {
    private func sample(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ $0 / 7) } }

    @Test func framesAfterFailuresAndOtherSettingsDecodeExactly() throws {
        for round in 0..<50 {
            let input = sample(1000 + round * 97, seed: UInt8(round))
            let level = [1, 3, 9, -5][round % 4]
            let frame = try Zstd.compress(input, level: level, checksum: round % 3 != 0)
            // The same bytes as the streaming compressor with the same settings: the pool changes nothing.
            let streamed = try ZstdCompressor(level: level, checksum: round % 3 != 0, pledgedSize: input.count)
            var expected: [UInt8] = []
            try input.withUnsafeBytes { try streamed.compress($0, into: &expected, end: true) }
            #expect(frame == expected)
            var broken = frame
            broken[broken.count / 2] ^= 0x40
            _ = try? Zstd.decompress(broken, maxSize: input.count)
            _ = try? Zstd.decompress(Array(frame.dropLast(3)), maxSize: input.count)
            #expect(try Zstd.decompress(frame, maxSize: input.count) == input)
        }
    }

    @Test func trailingBytesAreRefused() throws {
        let frame = try Zstd.compress(sample(2000, seed: 1))
        do {
            _ = try Zstd.decompress(frame + [0, 1, 2], maxSize: 2000)
            Issue.record("trailing bytes were accepted")
        } catch {
            #expect(error.kind == .corrupted)
        }
    }

    @Test func emptyInputRoundTrips() throws {
        #expect(try Zstd.decompress(try Zstd.compress([]), maxSize: 0) == [])
    }

    @Test func concurrentCallsShareThePool() async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for round in 0..<40 {
                        let input = self.sample(500 + task * 50 + round, seed: UInt8(task))
                        guard try Zstd.decompress(try Zstd.compress(input, level: 1 + task % 3), maxSize: input.count) == input else { return false }
                    }
                    return true
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
