/// Dense ordinals for repeated keys (students, outcomes, contexts, assets), so the rollup index hashes
/// each string once per query instead of once per result. Ordinals are never reused; they live only in
/// the rebuildable indexes and never reach the persisted tables.
struct Interner<Key: Hashable & Sendable>: Sendable {
    private var ordinals: [Key: Int32] = [:]
    private(set) var keys: [Key] = []

    func ordinal(of key: Key) -> Int32? { ordinals[key] }

    mutating func intern(_ key: Key) -> Int32 {
        if let existing = ordinals[key] { return existing }
        let ordinal = Int32(keys.count)
        ordinals[key] = ordinal
        keys.append(key)
        return ordinal
    }

    subscript(ordinal: Int32) -> Key { keys[Int(ordinal)] }
}
