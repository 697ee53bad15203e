/// FNV-1a, 64-bit: a stable hash, the same in every process and in every language, for what must
/// not depend on Swift's per-process seeded `Hasher` (placement of tenants, fingerprints kept on disk
/// or compared across nodes).
public enum FNV1a {
    @inlinable
    public static func hash<Bytes: Sequence>(_ bytes: Bytes) -> UInt64 where Bytes.Element == UInt8 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}
