import FuzzSupport

/// The entry point SwiftPM links this executable with (see `runFuzzer`).
@_cdecl("FuzzRequestDecoders_main")
public func harnessMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    runFuzzer(argc, argv, fuzz)
}
