/// A Canvas context (`context_type`, `context_id`), e.g. ("Course", "565") or ("Account", "1").
public struct ContextRef: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var type: String
    public var id: String

    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    /// Both parts, or nil when either is missing (a global outcome has no context).
    init?(type: String?, id: String?) {
        guard let type, let id else { return nil }
        self.init(type: type, id: id)
    }

    public var description: String { "\(type)/\(id)" }

    public static func < (lhs: ContextRef, rhs: ContextRef) -> Bool {
        lhs.type != rhs.type ? lhs.type < rhs.type : CanvasID.precedes(lhs.id, rhs.id)
    }
}

/// The asset a result is aligned to (`associated_asset_type`, `associated_asset_id`), e.g. ("Assignment", "56").
public struct AssetRef: Hashable, Sendable, CustomStringConvertible {
    public var type: String
    public var id: String

    public init(type: String, id: String) {
        self.type = type
        self.id = id
    }

    init?(type: String?, id: String?) {
        guard let type, let id else { return nil }
        self.init(type: type, id: id)
    }

    public var description: String { "\(type)/\(id)" }
}
