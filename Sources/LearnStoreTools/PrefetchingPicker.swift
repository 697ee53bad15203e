import LearnStoreModel
import CPrefetch
import LearnStoreWorkload

/// Picks uniformly random elements of an array and prefetches each pick `lookahead` picks before it
/// returns it. A tenant's ids (1.6 MB per 100k records) do not fit in the cache: without the
/// prefetch, the load tool stalled on a cache miss per request and spent a sixth of its CPU there,
/// CPU that the server under test then did not get. One pick ahead was too short to hide the miss
/// (the next request is written a few dozen nanoseconds later); eight is enough.
struct PrefetchingPicker<Element> {
    private static var lookahead: Int { 8 }
    private let elements: [Element]
    /// The next `lookahead` picks, a ring; `cursor` is the oldest.
    private var upcoming: [Int]
    private var cursor = 0

    init(_ elements: [Element], using rng: inout SplitMix64) {
        self.elements = elements
        self.upcoming = (0..<Self.lookahead).map { _ in elements.isEmpty ? 0 : Int(rng.next() % UInt64(elements.count)) }
        elements.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { for index in upcoming { learnstore_prefetch(base + index) } }
        }
    }

    /// The next random element. The array must not be empty.
    @inline(__always)
    mutating func next(using rng: inout SplitMix64) -> Element {
        let picked = elements[upcoming[cursor]]
        let following = Int(rng.next() % UInt64(elements.count))
        upcoming[cursor] = following
        cursor = cursor + 1 == Self.lookahead ? 0 : cursor + 1
        elements.withUnsafeBufferPointer { learnstore_prefetch($0.baseAddress! + following) }
        return picked
    }
}
