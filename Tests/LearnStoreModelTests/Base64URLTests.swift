import Foundation
import LearnStoreModel
import Testing

struct Base64URLTests {
    /// Foundation's standard base64, made URL-safe and unpadded: the reference.
    static func reference(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    @Test func everyLengthRoundTripsAndMatchesTheReference() {
        var generator = SplitMix64(seed: 7)
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            let text = Base64URL.encode(bytes)
            #expect(text == Self.reference(bytes), "length \(length)")
            #expect(Base64URL.decode(text) == bytes, "length \(length)")
            #expect(Array(text.utf8).withUnsafeBufferPointer { Base64URL.decode(utf8: $0) } == bytes, "length \(length)")
        }
    }

    @Test func bytesOutsideTheAlphabetPaddingAndImpossibleLengthsAreRefused() {
        for text in ["a", "abcde", "ab+c", "ab/c", "ab==", "abc=", "a.bc", "ab c", "ä"] {
            #expect(Base64URL.decode(text) == nil, "\(text)")
        }
        #expect(Base64URL.decode("") == [])
        #expect(Base64URL.decode("-_8") == [0xFB, 0xFF])
    }
}
