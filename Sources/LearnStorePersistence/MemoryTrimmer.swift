/// Returns free heap memory to the operating system (glibc's `malloc_trim`, declared in <malloc.h>,
/// which the Glibc module does not export).
public enum MemoryTrimmer {
    public static func trim() {
        #if os(Linux)
        _ = learnstore_malloc_trim(0)
        #endif
    }
}

#if os(Linux)
@_silgen_name("malloc_trim")
private func learnstore_malloc_trim(_ pad: Int) -> Int32
#endif
