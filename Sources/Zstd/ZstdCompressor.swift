import CZstd

/// Streaming compression: feed chunks, then end the frame.
///
/// Not thread-safe; one compressor per writer. It owns a `ZSTD_CCtx` and frees it on deinit.
public final class ZstdCompressor {
    private let context: OpaquePointer
    private var scratch: [UInt8]

    public init(level: Int = 1, checksum: Bool = true, pledgedSize: Int? = nil) throws(ZstdError) {
        guard let context = ZSTD_createCCtx() else {
            throw ZstdError(kind: .library, message: "cannot allocate a compression context")
        }
        self.context = context
        self.scratch = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        guard level >= Zstd.minLevel, level <= Zstd.maxLevel else {
            throw ZstdError(kind: .parameter, message: "level \(level) is outside \(Zstd.minLevel)...\(Zstd.maxLevel)")
        }
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level)))
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksum ? 1 : 0))
        if let pledgedSize {
            _ = try ZstdError.check(ZSTD_CCtx_setPledgedSrcSize(context, UInt64(pledgedSize)))
        }
    }

    deinit { ZSTD_freeCCtx(context) }

    /// Compresses `input`, appending output to `output`. With `end: true` the frame is finished, and the
    /// compressor is ready for a new frame.
    public func compress(_ input: UnsafeRawBufferPointer, into output: inout [UInt8], end: Bool = false) throws(ZstdError) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let directive = end ? ZSTD_e_end : ZSTD_e_continue
        let scratchCount = scratch.count
        while true {
            var produced = 0
            let code: Int = scratch.withUnsafeMutableBytes { raw in
                var outBuffer = ZSTD_outBuffer(dst: raw.baseAddress, size: scratchCount, pos: 0)
                let code = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
                produced = outBuffer.pos
                return code
            }
            let remaining = try ZstdError.check(code)
            output.append(contentsOf: scratch[0..<produced])
            if end {
                if remaining == 0 { return }
            } else if inBuffer.pos == inBuffer.size {
                return
            }
        }
    }

    public func compress(_ input: [UInt8], into output: inout [UInt8], end: Bool = false) throws(ZstdError) {
        let result: Result<Void, ZstdError> = input.withUnsafeBytes { raw in
            do throws(ZstdError) { try compress(raw, into: &output, end: end); return .success(()) } catch { return .failure(error) }
        }
        try result.get()
    }
}
