import HashTreeCollections
import LearnStoreModel

/// A remembered idempotency key: which records its first create made.
public struct IdempotencyEntry: Sendable, Hashable {
    /// The caller's key, scoped by app (`app \0 key`) so two apps cannot collide.
    public var key: String
    /// FNV-1a of the encoded request bodies: a retry with a different body is a conflict.
    public var fingerprint: UInt64
    public var ids: [RecordID]
    public var sequence: UInt64

    public init(key: String, fingerprint: UInt64, ids: [RecordID], sequence: UInt64) {
        self.key = key
        self.fingerprint = fingerprint
        self.ids = ids
        self.sequence = sequence
    }

    public static let maximumKeyBytes = 128

    public static func scopedKey(_ key: String, appID: String?) -> String { (appID ?? "") + "\u{0}" + key }

    public static func fingerprint(of bodies: [RecordBody]) -> UInt64 {
        var writer = ByteWriter(capacity: 256)
        for body in bodies { RecordCodec.encode(body, into: &writer) }
        return FNV1a.hash(writer.bytes)
    }
}

/// The last `capacity` idempotency keys of a tenant, oldest evicted first. Persistent (a
/// `TreeDictionary`) because snapshots capture it.
public struct IdempotencyTable: Sendable {
    public static let defaultCapacity = 10_000

    public private(set) var entries = TreeDictionary<String, IdempotencyEntry>()
    private var order: [String] = []
    private var head = 0
    public let capacity: Int

    public init(capacity: Int = IdempotencyTable.defaultCapacity) { self.capacity = max(1, capacity) }

    public subscript(key: String) -> IdempotencyEntry? { entries[key] }

    public var count: Int { entries.count }

    /// Remembers `entry`; returns the entry it evicted, if any.
    @discardableResult
    public mutating func remember(_ entry: IdempotencyEntry) -> IdempotencyEntry? {
        if entries.updateValue(entry, forKey: entry.key) != nil { return nil }
        if order.count < capacity {
            order.append(entry.key)
            return nil
        }
        let evictedKey = order[head]
        order[head] = entry.key
        head = (head + 1) % capacity
        return entries.removeValue(forKey: evictedKey)
    }

    /// Takes back the ``remember(_:)`` of the new key `key`, which pushed `evicted` out of the full
    /// table (nil: it pushed nothing out): the table is as it was, in the same order. Only for the
    /// newest remember (undos run newest first).
    public mutating func undoRemember(_ key: String, evicted: IdempotencyEntry?) {
        guard let evicted else { return forget(key) }
        entries.removeValue(forKey: key)
        head = (head + capacity - 1) % capacity
        order[head] = evicted.key
        entries[evicted.key] = evicted
    }

    public mutating func forget(_ key: String) {
        guard entries.removeValue(forKey: key) != nil else { return }
        if let index = order.firstIndex(of: key) {
            order.remove(at: index)
            if index < head { head -= 1 }
            if head >= order.count { head = 0 }
        }
    }

    /// Entries oldest first (snapshot order, so a reload evicts in the same order).
    public var entriesInOrder: [IdempotencyEntry] {
        let keys = order.count < capacity ? order : Array(order[head...] + order[..<head])
        return keys.compactMap { entries[$0] }
    }
}
