import CZstd

/// One-shot zstd compression and decompression.
///
/// Frames written here always carry their content size and, unless disabled, zstd's own XXH64-based
/// content checksum, so a corrupted frame fails to decompress with ``ZstdError/Kind/corrupted``.
public enum Zstd {
    /// The library's version string, e.g. "1.5.4".
    public static var libraryVersion: String { String(cString: ZSTD_versionString()) }

    public static let minLevel = Int(ZSTD_minCLevel())
    public static let maxLevel = Int(ZSTD_maxCLevel())

    /// Compresses `input` into a single frame.
    public static func compress(
        _ input: UnsafeRawBufferPointer, level: Int = 1, checksum: Bool = true
    ) throws(ZstdError) -> [UInt8] {
        guard level >= minLevel, level <= maxLevel else {
            throw ZstdError(kind: .parameter, message: "level \(level) is outside \(minLevel)...\(maxLevel)")
        }
        let context = try ZstdContextPool.compression.take()
        defer {
            ZSTD_CCtx_reset(context.pointer, ZSTD_reset_session_and_parameters)
            ZstdContextPool.compression.give(context)
        }
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(context.pointer, ZSTD_c_compressionLevel, Int32(level)))
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(context.pointer, ZSTD_c_checksumFlag, checksum ? 1 : 0))
        let bound = ZSTD_compressBound(input.count)
        // ZSTD_compress2 pledges the input's size, so the frame carries its content size.
        return try filled(capacity: bound) { ZSTD_compress2(context.pointer, $0, bound, input.baseAddress, input.count) }
    }

    /// An array of up to `capacity` bytes written by a libzstd call that returns how many it wrote
    /// or an error code.
    private static func filled(capacity: Int, _ call: (UnsafeMutableRawPointer?) -> Int) throws(ZstdError) -> [UInt8] {
        var failure: ZstdError?
        let out = [UInt8](unsafeUninitializedCapacity: max(1, capacity)) { buffer, initialized in
            do throws(ZstdError) { initialized = try ZstdError.check(call(buffer.baseAddress)) } catch {
                failure = error
                initialized = 0
            }
        }
        if let failure { throw failure }
        return out
    }

    public static func compress(_ input: [UInt8], level: Int = 1, checksum: Bool = true) throws(ZstdError) -> [UInt8] {
        let result: Result<[UInt8], ZstdError> = input.withUnsafeBytes { raw in
            do throws(ZstdError) { return .success(try compress(raw, level: level, checksum: checksum)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Decompresses exactly one complete frame. Trailing bytes, a truncated frame, a bad checksum or an
    /// output larger than `maxSize` throw.
    public static func decompress(_ input: UnsafeRawBufferPointer, maxSize: Int) throws(ZstdError) -> [UInt8] {
        let contentSize = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if contentSize != ZSTD_CONTENTSIZE_UNKNOWN, contentSize != ZSTD_CONTENTSIZE_ERROR {
            guard contentSize <= UInt64(maxSize) else {
                throw ZstdError(kind: .tooLarge, message: "frame declares \(contentSize) bytes, limit is \(maxSize)")
            }
            return try decompress(input, declaredSize: Int(contentSize))
        }
        let decompressor = try ZstdDecompressor(maxOutput: maxSize)
        var out: [UInt8] = []
        let consumed = try decompressor.decompress(input, into: &out)
        guard decompressor.isFrameComplete else {
            throw ZstdError(kind: .truncated, message: "input ended inside a zstd frame")
        }
        guard consumed == input.count else {
            throw ZstdError(kind: .corrupted, message: "\(input.count - consumed) bytes follow the zstd frame")
        }
        return out
    }

    /// One frame that declares its size (at most the caller's limit): decompressed in one call into an
    /// array of exactly that size, with a pooled context.
    private static func decompress(_ input: UnsafeRawBufferPointer, declaredSize: Int) throws(ZstdError) -> [UInt8] {
        let frameLength = ZSTD_findFrameCompressedSize(input.baseAddress, input.count)
        if ZSTD_isError(frameLength) != 0 {
            if ZSTD_getErrorCode(frameLength) == ZSTD_error_srcSize_wrong {
                throw ZstdError(kind: .truncated, message: "input ended inside a zstd frame")
            }
            _ = try ZstdError.check(frameLength)
        }
        guard frameLength == input.count else {
            throw ZstdError(kind: .corrupted, message: "\(input.count - frameLength) bytes follow the zstd frame")
        }
        let context = try ZstdContextPool.decompression.take()
        defer {
            ZSTD_DCtx_reset(context.pointer, ZSTD_reset_session_and_parameters)
            ZstdContextPool.decompression.give(context)
        }
        let out = try filled(capacity: declaredSize) {
            ZSTD_decompressDCtx(context.pointer, $0, declaredSize, input.baseAddress, input.count)
        }
        guard out.count == declaredSize else {
            throw ZstdError(kind: .corrupted, message: "frame declares \(declaredSize) bytes but holds \(out.count)")
        }
        return out
    }

    public static func decompress(_ input: [UInt8], maxSize: Int) throws(ZstdError) -> [UInt8] {
        let result: Result<[UInt8], ZstdError> = input.withUnsafeBytes { raw in
            do throws(ZstdError) { return .success(try decompress(raw, maxSize: maxSize)) } catch { return .failure(error) }
        }
        return try result.get()
    }
}
