extension ContiguousArray {
    /// Makes room for `extra` more elements, growing by a quarter (at least `minimumStep`) instead of
    /// doubling. For the first, growing page of a tenant's structures: most tenants are small and stay
    /// small, and a doubled buffer would leave up to half of itself unused for good (measured: 28 of
    /// 128 record slots for a 100-record tenant). Amortized cost stays linear; there are just more,
    /// smaller copies while a structure is small. Never grows past `limit` unless `extra` needs it.
    @inline(__always)
    mutating func reserveGently(forAppending extra: Int, minimumStep: Int = 4, limit: Int = .max) {
        let needed = count + extra
        guard needed > capacity else { return }
        reserveCapacity(Swift.max(needed, Swift.min(limit, count + Swift.max(minimumStep, count / 4))))
    }
}
