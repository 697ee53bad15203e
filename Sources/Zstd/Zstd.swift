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
        let compressor = try ZstdCompressor(level: level, checksum: checksum, pledgedSize: input.count)
        var out: [UInt8] = []
        out.reserveCapacity(ZSTD_compressBound(input.count))
        try compressor.compress(input, into: &out, end: true)
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
        let decompressor = try ZstdDecompressor(maxOutput: maxSize)
        var out: [UInt8] = []
        let contentSize = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if contentSize != ZSTD_CONTENTSIZE_UNKNOWN, contentSize != ZSTD_CONTENTSIZE_ERROR {
            guard contentSize <= UInt64(maxSize) else {
                throw ZstdError(kind: .tooLarge, message: "frame declares \(contentSize) bytes, limit is \(maxSize)")
            }
            out.reserveCapacity(Int(contentSize))
        }
        let consumed = try decompressor.decompress(input, into: &out)
        guard decompressor.isFrameComplete else {
            throw ZstdError(kind: .truncated, message: "input ended inside a zstd frame")
        }
        guard consumed == input.count else {
            throw ZstdError(kind: .corrupted, message: "\(input.count - consumed) bytes follow the zstd frame")
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
