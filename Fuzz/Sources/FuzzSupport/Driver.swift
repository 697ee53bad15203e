/// The harness entry libFuzzer calls for each input.
public typealias FuzzEntry = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ entry: FuzzEntry
) -> CInt

/// Runs libFuzzer's driver. SwiftPM links an executable target with `--defsym main=<Target>_main`, so
/// each harness defines `<Target>_main` and calls this, which does what libFuzzer's own `main` does.
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, _ entry: FuzzEntry) -> CInt {
    var count = argc
    var arguments: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = argv
    return LLVMFuzzerRunDriver(&count, &arguments, entry)
}
