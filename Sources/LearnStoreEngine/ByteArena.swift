import CPrefetch
/// Append-only storage for variable-length strings that do not repeat (certification references).
/// A string is addressed by a packed (page, offset) location plus its length. Space freed by a
/// patch is reclaimed when the tenant is next loaded from a snapshot.
public struct ByteArena: Sendable {
    static let pageBits = 16
    static let pageSize = 1 << pageBits  // 64 KiB; offsets fit 16 bits

    private var pages: [ContiguousArray<UInt8>] = []
    public private(set) var usedBytes = 0

    public init() {}

    /// Appends a string's UTF-8 (at most 65,535 bytes) and returns its location.
    public mutating func append(_ string: String) -> UInt32 {
        var string = string
        return string.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(bytes: UnsafeRawBufferPointer) -> UInt32 {
        precondition(bytes.count < Self.pageSize)
        if pages.isEmpty || pages[pages.count - 1].count + bytes.count > Self.pageSize {
            // As in PagedArray: the first page grows with its contents, later ones are taken whole.
            var page = ContiguousArray<UInt8>()
            page.reserveCapacity(pages.isEmpty ? 256 : Self.pageSize)
            pages.append(page)
        }
        let pageIndex = pages.count - 1
        let offset = pages[pageIndex].count
        if pageIndex == 0 { pages[0].reserveGently(forAppending: bytes.count, minimumStep: 256, limit: Self.pageSize) }
        pages[pageIndex].append(contentsOf: bytes)
        usedBytes += bytes.count
        return UInt32(pageIndex) << UInt32(Self.pageBits) | UInt32(offset)
    }

    @inline(__always)
    public func withBytes<R>(at location: UInt32, length: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let pageIndex = Int(location >> UInt32(Self.pageBits))
        let offset = Int(location & UInt32(Self.pageSize - 1))
        return pages[pageIndex].withUnsafeBytes { raw in
            body(UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
        }
    }

    /// Starts loading the bytes at `location` into the cache: the first cache line and, when the
    /// bytes cross into the next line, that one too (a 30-byte certification reference does about
    /// half the time, and the copy then stalls on its tail).
    public func prefetch(at location: UInt32, length: Int) {
        let pageIndex = Int(location >> UInt32(Self.pageBits))
        guard pageIndex < pages.count else { return }
        let offset = Int(location & UInt32(Self.pageSize - 1))
        // Only the address leaves the borrow (as in `PagedArray.prefetch`): the prefetch never reads
        // through it, and issued inside, it made Swift retain and release the page around the call.
        let start = pages.withUnsafeBufferPointer { pagePointers in
            pagePointers[pageIndex].withUnsafeBufferPointer { page in UnsafeRawPointer(page.baseAddress! + offset) }
        }
        learnstore_prefetch(start)
        if length > 1, (Int(bitPattern: start) & 63) + length > 64 { learnstore_prefetch(start + length - 1) }
    }

    public func string(at location: UInt32, length: Int) -> String {
        withBytes(at: location, length: length) { String(decoding: $0, as: UTF8.self) }
    }

    public func equals(at location: UInt32, length: Int, _ other: UnsafeRawBufferPointer) -> Bool {
        guard other.count == length else { return false }
        return withBytes(at: location, length: length) { mine in
            mine.elementsEqual(other)
        }
    }

    public var capacityBytes: Int { pages.reduce(0) { $0 + $1.capacity } }
}
