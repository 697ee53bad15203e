import CZstd
import Synchronization

/// zstd contexts kept for reuse by the one-shot calls of ``Zstd``. Creating a context allocates and
/// clears its workspace (and the streaming classes add a 128 KiB scratch buffer): for the one block
/// of a small tenant's snapshot that cost more than the compression itself, ten thousand times over
/// when a server of many small tenants starts or snapshots.
final class ZstdContextPool: Sendable {
    /// A context owned by whoever took it from the pool until it is given back.
    struct Context: @unchecked Sendable {
        let pointer: OpaquePointer
    }

    private let idle = Mutex<[Context]>([])
    private let keep: Int
    private let create: @Sendable () -> OpaquePointer?
    private let free: @Sendable (OpaquePointer) -> Void

    init(keep: Int, create: @escaping @Sendable () -> OpaquePointer?, free: @escaping @Sendable (OpaquePointer) -> Void) {
        self.keep = keep
        self.create = create
        self.free = free
    }

    func take() throws(ZstdError) -> Context {
        if let context = idle.withLock({ $0.popLast() }) { return context }
        guard let pointer = create() else { throw ZstdError(kind: .library, message: "cannot allocate a zstd context") }
        return Context(pointer: pointer)
    }

    /// Gives a context back (the caller has reset it); beyond `keep` idle ones it is freed.
    func give(_ context: Context) {
        let kept = idle.withLock { idle -> Bool in
            guard idle.count < keep else { return false }
            idle.append(context)
            return true
        }
        if !kept { free(context.pointer) }
    }

    static let decompression = ZstdContextPool(keep: 16, create: { ZSTD_createDCtx() }, free: { ZSTD_freeDCtx($0) })
    static let compression = ZstdContextPool(keep: 16, create: { ZSTD_createCCtx() }, free: { ZSTD_freeCCtx($0) })
}
