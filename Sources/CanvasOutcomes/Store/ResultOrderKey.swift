import LearnStoreModel

/// Where a result sits in every paged listing: `assessed_at` ascending (absent first), then id in
/// Canvas order. Built from the result alone, so the listing order never depends on arrival order.
struct ResultOrderKey: Comparable, Hashable, Sendable {
    var time: Int64
    var id: CanvasIDOrder

    init(time: Int64, key: String) {
        self.time = time
        self.id = CanvasIDOrder(key)
    }

    init(_ result: OutcomeResult) {
        self.init(time: result.assessedAt?.milliseconds ?? .min, key: result.key)
    }

    static func < (lhs: ResultOrderKey, rhs: ResultOrderKey) -> Bool {
        lhs.time != rhs.time ? lhs.time < rhs.time : lhs.id < rhs.id
    }
}

/// An opaque keyset position in a result listing: the (assessed_at, id) of the last result returned.
/// The next page starts strictly after it, so results inserted or deleted meanwhile never shift a page.
public struct ResultCursor: Hashable, Sendable, CustomStringConvertible {
    let position: ResultOrderKey

    init(position: ResultOrderKey) { self.position = position }

    /// The token to hand to a client: "r1." + 16 hex digits of the time + "." + hex of the key's UTF-8.
    public var token: String {
        var text = "r1." + Self.hex(UInt64(bitPattern: position.time), width: 16) + "."
        for byte in position.id.key.utf8 { text += Self.hex(UInt64(byte), width: 2) }
        return text
    }

    public var description: String { token }

    /// Parses a token made by ``token``; nil for anything else.
    public init?(token: String) {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "r1", parts[1].utf8.count == 16, let time = UInt64(parts[1], radix: 16),
              !parts[2].isEmpty, parts[2].utf8.count % 2 == 0, parts[2].utf8.count <= 2 * 4096
        else { return nil }
        var bytes: [UInt8] = []
        var iterator = parts[2].utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        guard let key = String(validating: bytes, as: UTF8.self) else { return nil }
        position = ResultOrderKey(time: Int64(bitPattern: time), key: key)
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

/// Which results a listing returns.
public enum ResultScope: Hashable, Sendable {
    /// One student's results (`user_uuid`).
    case student(String)
    /// Every result for one outcome.
    case outcome(String)
    /// Results whose `result_context_type`/`result_context_id` is this context.
    case context(ContextRef)
    /// Results aligned to one asset (`associated_asset_type`/`associated_asset_id`).
    case asset(AssetRef)
    /// Results with `assessed_at` in `[from, to)`.
    case assessedBetween(from: Timestamp, to: Timestamp)
}

/// One page of a listing. `next` is nil on the last page.
public struct ResultPage: Hashable, Sendable {
    public var results: [OutcomeResult]
    public var next: ResultCursor?

    public init(results: [OutcomeResult], next: ResultCursor?) {
        self.results = results
        self.next = next
    }
}
