/// Takes values off the front of a fuzz input; past the end every read yields zeros, so a harness
/// never has to check lengths before it decides what to do.
public struct FuzzInput {
    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ data: UnsafePointer<UInt8>, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: data, count: count)
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    public mutating func u8() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }

    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }

    /// Up to `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = end }
        return UnsafeRawBufferPointer(rebasing: bytes[min(offset, end)..<end])
    }

    /// Everything not yet taken.
    public mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }

    /// The rest split at every occurrence of `separator` (a byte sequence libFuzzer's comparison
    /// tracing discovers quickly), for inputs made of several parts.
    public mutating func parts(separatedBy separator: [UInt8], maximum: Int) -> [UnsafeRawBufferPointer] {
        let all = rest()
        var parts: [UnsafeRawBufferPointer] = []
        var start = 0
        var index = 0
        while index + separator.count <= all.count, parts.count < maximum - 1 {
            if all[index] == separator[0], zip(all[index..<(index + separator.count)], separator).allSatisfy({ $0 == $1 }) {
                parts.append(UnsafeRawBufferPointer(rebasing: all[start..<index]))
                index += separator.count
                start = index
            } else {
                index += 1
            }
        }
        parts.append(UnsafeRawBufferPointer(rebasing: all[start..<all.count]))
        return parts
    }
}

/// A broken invariant in a harness: reported as a crash, with the reason, so libFuzzer saves the input.
public func fuzzFailure(_ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("fuzz invariant broken: \(message())", file: file, line: line)
}
