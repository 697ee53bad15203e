import Foundation
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// The worked examples of docs/PROTOCOL.md, appendix A, are read out of the document and compared
/// with the golden frames, so the document cannot drift from the codecs.
///
/// Each example names its golden file (`` `create_request.bin` ``) and is followed by a fenced block
/// whose lines are hex bytes, then (after at least two spaces) an annotation.
@Suite struct ProtocolDocumentTests {
    struct Example {
        var name: String
        var bytes: [UInt8]
        var line: Int
    }

    static func appendixA() throws -> String {
        let text = try String(contentsOf: SourceTree.protocolDocument, encoding: .utf8)
        let start = try #require(text.range(of: "\n## Appendix A: worked examples\n"), "appendix A is missing")
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The examples in document order. Throws on a line whose byte column is not hex.
    static func examples(in appendix: String) throws -> [Example] {
        var examples: [Example] = []
        var pendingName: String?
        var current: Example?
        for (index, line) in appendix.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.hasPrefix("```") {
                if let open = current {
                    examples.append(open)
                    current = nil
                } else if let name = pendingName {
                    current = Example(name: name, bytes: [], line: index)
                    pendingName = nil
                }
                continue
            }
            if current != nil {
                current!.bytes += try bytes(of: line)
            } else if let match = line.firstMatch(of: #/`([a-z_]+)\.bin`/#) {
                pendingName = String(match.1)
            }
        }
        #expect(current == nil, "an unclosed code block")
        return examples
    }

    struct MalformedLine: Error, CustomStringConvertible {
        var line: String
        var description: String { "not a line of hex bytes: \(line)" }
    }

    /// The bytes of one line: whitespace-separated pairs of hex digits up to the first run of two
    /// spaces (the annotation follows it).
    static func bytes(of line: Substring) throws -> [UInt8] {
        let trimmed = line.drop { $0 == " " }
        let column = trimmed.range(of: "  ").map { trimmed[..<$0.lowerBound] } ?? trimmed
        var out: [UInt8] = []
        for token in column.split(separator: " ") {
            guard token.count == 2, let byte = UInt8(token, radix: 16) else { throw MalformedLine(line: String(line)) }
            out.append(byte)
        }
        return out
    }

    @Test func theWorkedExamplesAreTheGoldenFrames() throws {
        let examples = try Self.examples(in: try Self.appendixA())
        let golden = Dictionary(uniqueKeysWithValues: GoldenFrame.all.map { ($0.name, $0) })
        #expect(Set(examples.map(\.name)) == Set(golden.keys), "every golden frame is shown once, and nothing else")
        #expect(examples.count == Set(examples.map(\.name)).count)
        for example in examples {
            let frame = try #require(golden[example.name], "\(example.name).bin is not a golden frame")
            let file = try GoldenFrameTests.golden(example.name)
            #expect(example.bytes == file, "appendix A, \(example.name) (block at appendix line \(example.line)):\n  document: \(hex(example.bytes))\n  golden:   \(hex(file))")
            #expect(example.bytes == frame.bytes)
        }
    }

    @Test func theParserReadsAnnotatedHexAndRejectsAnythingElse() throws {
        #expect(try Self.bytes(of: "0b 00 00 00              length = 6 + 5") == [0x0b, 0, 0, 0])
        #expect(try Self.bytes(of: "61 77 73  \"aws\"") == [0x61, 0x77, 0x73])
        #expect(try Self.bytes(of: "ff") == [0xff])
        #expect(try Self.bytes(of: "") == [])
        #expect(throws: MalformedLine.self) { try Self.bytes(of: "0b 00 ... length") }
        #expect(throws: MalformedLine.self) { try Self.bytes(of: "length = 6") }
        let examples = try Self.examples(in: "x `a_b.bin` y\n```\n01 02  one\n03\n```\nz\n```\nignored words\n```\n")
        #expect(examples.map(\.name) == ["a_b"] && examples.first?.bytes == [1, 2, 3])
    }
}
