/// Paged result listings. Every listing is an index in (assessed_at, id) order read from a keyset
/// cursor, so a page costs O(log n + page) and never scans the results table.
extension OutcomeStore {
    public static let maximumPageSize = 1000

    /// One page of `scope`, starting after `cursor`, at most `limit` results (clamped to 1...1000).
    ///
    /// Paging is stable under concurrent ingestion: each page starts strictly after the last position
    /// returned, so a result never appears twice and every result present for the whole session, with
    /// an unchanged `assessed_at`, appears exactly once; results added or deleted meanwhile appear or
    /// not according to where they fall. A result re-assessed mid-session moves to its new
    /// `assessed_at` (seen again if it moved past the cursor, not at all if it moved behind it); page a
    /// captured copy of the store (O(1)) for a listing that ignores concurrent changes entirely.
    public func results(_ scope: ResultScope, after cursor: ResultCursor? = nil, limit: Int = 100) -> ResultPage {
        let limit = min(max(limit, 1), Self.maximumPageSize)
        let list: SortedKeyList<ResultOrderKey>?
        var lowerTime = Int64.min
        var upperTime: Int64?
        switch scope {
        case .student(let uuid): list = indexes.resultsByStudent[uuid]
        case .outcome(let id): list = indexes.resultsByOutcome[id]
        case .context(let context): list = indexes.resultsByContext[context]
        case .asset(let asset): list = indexes.resultsByAsset[asset]
        case .assessedBetween(let from, let to):
            list = indexes.resultsByTime
            lowerTime = from.milliseconds
            upperTime = to.milliseconds
        }
        guard let list else { return ResultPage(results: [], next: nil) }

        var page: [OutcomeResult] = []
        page.reserveCapacity(min(limit, list.count))
        var last: ResultOrderKey?
        var more = false
        let after = cursor?.position
        list.forEach(from: { position in
            position.time < lowerTime || (after.map { position <= $0 } ?? false)
        }) { position in
            if let upperTime, position.time >= upperTime { return false }
            if page.count == limit { more = true; return false }
            if let result = tables.results[position.id.key] {
                page.append(result)
                last = position
            }
            return true
        }
        return ResultPage(results: page, next: more ? last.map(ResultCursor.init(position:)) : nil)
    }
}
