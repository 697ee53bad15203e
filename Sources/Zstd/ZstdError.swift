import CZstd

/// A failure reported by libzstd, or a frame that is not a complete, valid zstd frame.
public struct ZstdError: Error, Equatable, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable {
        let rawValue: UInt8
        /// The library refused a parameter (level out of range, ...).
        public static let parameter = Kind(rawValue: 1)
        /// Input is not a zstd frame, is corrupted, or its checksum does not match.
        public static let corrupted = Kind(rawValue: 2)
        /// Input ended before the frame was complete.
        public static let truncated = Kind(rawValue: 3)
        /// Output would exceed the caller's size limit.
        public static let tooLarge = Kind(rawValue: 4)
        /// Out of memory or another library-level failure.
        public static let library = Kind(rawValue: 5)
    }

    public let kind: Kind
    public let message: String

    public var description: String { "zstd: \(message)" }

    static func check(_ code: Int) throws(ZstdError) -> Int {
        guard ZSTD_isError(code) != 0 else { return code }
        let name = String(cString: ZSTD_getErrorName(code))
        let errorCode = ZSTD_getErrorCode(code)
        let kind: Kind
        switch errorCode {
        case ZSTD_error_parameter_unsupported, ZSTD_error_parameter_outOfBound,
            ZSTD_error_parameter_combination_unsupported:
            kind = .parameter
        case ZSTD_error_checksum_wrong, ZSTD_error_corruption_detected, ZSTD_error_prefix_unknown,
            ZSTD_error_frameParameter_unsupported, ZSTD_error_frameParameter_windowTooLarge,
            ZSTD_error_literals_headerWrong, ZSTD_error_dictionary_corrupted, ZSTD_error_srcSize_wrong:
            kind = .corrupted
        case ZSTD_error_dstSize_tooSmall:
            kind = .tooLarge
        default:
            kind = .library
        }
        throw ZstdError(kind: kind, message: name)
    }
}
