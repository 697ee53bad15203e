#if canImport(Glibc)
import Glibc
#endif

/// The process's resident set size, from `/proc/self/statm` (Linux): one short read, cheap enough
/// for every scrape.
public enum ResidentMemory {
    /// `statm` holds page counts: size, resident, shared, text, lib, data, dirty. Returns the
    /// resident bytes, or nil if the text is not of that form.
    public static func parseStatm(_ text: String, pageSize: Int) -> Int? {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count >= 2, let pages = Int(fields[1]), pages >= 0, pageSize > 0 else { return nil }
        let (bytes, overflow) = pages.multipliedReportingOverflow(by: pageSize)
        return overflow ? nil : bytes
    }

    /// The current resident bytes; nil where `/proc/self/statm` cannot be read (not Linux).
    public static func current() -> Int? {
        #if os(Linux)
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        return parseStatm(String(decoding: buffer[..<count], as: UTF8.self), pageSize: Int(sysconf(Int32(_SC_PAGESIZE))))
        #else
        return nil
        #endif
    }
}
