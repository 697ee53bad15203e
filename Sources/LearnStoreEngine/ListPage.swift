import LearnStoreModel

/// One page of a list: the matching slots in order, and the cursor for the next page (nil at the end).
public struct ListPage: Sendable {
    public var slots: [UInt32]
    public var nextCursor: ListCursor?
}

