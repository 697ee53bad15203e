import CPrefetch

/// An append-mostly array stored in fixed-size pages, each its own copy-on-write buffer.
///
/// Why: a snapshot captures a tenant by copying its storage. With one big `Array`, the first write
/// after such a copy duplicates every element (measured here: 72 ms for 1M entries). Here a copy
/// shares the pages, and a later write duplicates only the outer page list and the one page it
/// touches, so the writer's pause stays in microseconds.
public struct PagedArray<Element>: RandomAccessCollection {
    public static var pageShift: Int { 10 }
    public static var pageSize: Int { 1 << pageShift }

    private var pages: [ContiguousArray<Element>] = []
    public private(set) var count = 0

    public init() {}

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    @inline(__always)
    public subscript(index: Int) -> Element {
        get {
            precondition(index >= 0 && index < count, "PagedArray index out of range")
            // Borrowed access through buffer pointers: no retain/release of the page on the hot path.
            return pages.withUnsafeBufferPointer { pagePointers in
                pagePointers[index >> Self.pageShift].withUnsafeBufferPointer { $0[index & (Self.pageSize - 1)] }
            }
        }
        _modify {
            precondition(index >= 0 && index < count, "PagedArray index out of range")
            yield &pages[index >> Self.pageShift][index & (Self.pageSize - 1)]
        }
    }

    /// Starts loading element `index` (every cache line of it) into the cache; out of range does nothing.
    @inline(__always)
    public func prefetch(_ index: Int) {
        guard index >= 0 && index < count else { return }
        // Only the address leaves the borrow: a prefetch is a hint that never reads through it. Issued
        // inside, the C call (opaque to Swift's reference counting) made Swift retain and release the
        // page around it, a page every reader of the tenant shares.
        let start = pages.withUnsafeBufferPointer { pagePointers in
            pagePointers[index >> Self.pageShift].withUnsafeBufferPointer { page in
                UnsafeRawPointer(page.baseAddress! + (index & (Self.pageSize - 1)))
            }
        }
        // Every line the element touches, from the line its first byte is in to the line of its
        // last: stepping 64 bytes from its start skipped the last line of an element that starts
        // late in a line (a 112-byte record at offset 32 or 48 spans three lines, and its flags
        // are in the third).
        var line = Int(bitPattern: start) & ~63
        let last = (Int(bitPattern: start) + MemoryLayout<Element>.stride - 1) & ~63
        while line <= last {
            learnstore_prefetch(start + (line - Int(bitPattern: start)))
            line += 64
        }
    }

    public mutating func append(_ element: Element) {
        if count == pages.count << Self.pageShift {
            // The first page grows with its elements (a small tenant holds a few records, not a
            // page); later pages are taken whole, so a large array never copies while it grows.
            var page = ContiguousArray<Element>()
            page.reserveCapacity(pages.isEmpty ? Self.firstPageCapacity : Self.pageSize)
            pages.append(page)
        }
        if pages.count == 1 { pages[0].reserveGently(forAppending: 1, minimumStep: Self.firstPageCapacity, limit: Self.pageSize) }
        pages[pages.count - 1].append(element)
        count += 1
    }

    static var firstPageCapacity: Int { 8 }

    /// Makes room in the first page for `extra` elements about to be appended together, so that a
    /// small tenant loaded in one batch holds exactly its records rather than up to a quarter more.
    /// Later pages are taken whole anyway.
    public mutating func reserve(forAppending extra: Int) {
        guard count < Self.pageSize, extra > 0 else { return }
        if pages.isEmpty { pages.append(ContiguousArray()) }
        pages[0].reserveGently(forAppending: Swift.min(extra, Self.pageSize - count), minimumStep: Self.firstPageCapacity, limit: Self.pageSize)
    }

    public mutating func removeAll() {
        pages = []
        count = 0
    }

    /// Drops elements from the end (used to undo appends that could not be made durable).
    public mutating func removeLast(_ k: Int) {
        precondition(k >= 0 && k <= count)
        for _ in 0..<k {
            pages[pages.count - 1].removeLast()
            if pages[pages.count - 1].isEmpty { pages.removeLast() }
            count -= 1
        }
    }

    public var pageCount: Int { pages.count }
    public var capacityBytes: Int { pages.reduce(0) { $0 + $1.capacity } * MemoryLayout<Element>.stride }
}

extension PagedArray: Sendable where Element: Sendable {}
