import CCRC32C

/// CRC-32C (Castagnoli): the checksum of WAL records and snapshot blocks (hardware-accelerated on
/// x86-64 with SSE4.2).
public enum CRC32C {
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        learnstore_crc32c(seed, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    public static func checksum(_ bytes: ArraySlice<UInt8>, seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }
}
