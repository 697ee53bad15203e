import CZstd

/// Streaming decompression of one frame, with a bound on the total output.
public final class ZstdDecompressor {
    private let context: OpaquePointer
    private var scratch: [UInt8]
    private let maxOutput: Int
    private var produced = 0
    /// True once the end of a frame (including its checksum) has been read and verified.
    public private(set) var isFrameComplete = false

    public init(maxOutput: Int = .max) throws(ZstdError) {
        guard let context = ZSTD_createDCtx() else {
            throw ZstdError(kind: .library, message: "cannot allocate a decompression context")
        }
        self.context = context
        self.maxOutput = maxOutput
        self.scratch = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Decompresses as much of `input` as belongs to the current frame, appending to `output`.
    /// Returns the number of input bytes consumed; stops at the end of the frame.
    @discardableResult
    public func decompress(_ input: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(ZstdError) -> Int {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let scratchCount = scratch.count
        while !isFrameComplete {
            var got = 0
            let code: Int = scratch.withUnsafeMutableBytes { raw in
                var outBuffer = ZSTD_outBuffer(dst: raw.baseAddress, size: scratchCount, pos: 0)
                let code = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
                got = outBuffer.pos
                return code
            }
            let hint = try ZstdError.check(code)
            produced += got
            guard produced <= maxOutput else {
                throw ZstdError(kind: .tooLarge, message: "output exceeds the limit of \(maxOutput) bytes")
            }
            output.append(contentsOf: scratch[0..<got])
            if hint == 0 { isFrameComplete = true; break }
            // No more input and the output buffer was not filled: we need more input.
            if inBuffer.pos == inBuffer.size && got < scratchCount { break }
        }
        return inBuffer.pos
    }
}
