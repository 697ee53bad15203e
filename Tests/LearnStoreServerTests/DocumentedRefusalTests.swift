import Foundation
import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// docs/PROTOCOL.md section 6 read out of the document and checked against the server: the error
/// code table against the codes the server knows, and every row of the table of refusals (6.3) sent
/// to a real server over TCP. A row the test cannot build, or a case the document lacks, fails.
@Suite struct DocumentedRefusalTests {
    static let document = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/PROTOCOL.md")

    static func section(_ heading: String) throws -> String {
        let text = try String(contentsOf: document, encoding: .utf8)
        let start = try #require(text.range(of: "\n### \(heading)\n"), "section \(heading) is missing")
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? rest.endIndex
        let next = rest.range(of: "\n### ")?.lowerBound ?? rest.endIndex
        return String(rest[..<min(end, next)])
    }

    /// The cells of the table rows of `text` (a row starts with `|`; the header and rule are skipped).
    static func rows(_ text: String) -> [[String]] {
        text.split(separator: "\n").filter { $0.hasPrefix("|") }.dropFirst(2).map { line in
            line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    static func unquoted(_ cell: String) -> String { cell.replacingOccurrences(of: "`", with: "") }

    @Test func theErrorCodeTableIsTheServersCodes() throws {
        let table = Self.rows(try Self.section("6.2 Error codes")).map { (UInt16($0[0]), Self.unquoted($0[1])) }
        let wire = LearnStoreError.Code.all.filter { $0.rawValue < 600 }
        #expect(table.map(\.0) == wire.map { Optional($0.rawValue) }, "the document's codes in order")
        #expect(table.map(\.1) == wire.map(\.name), "the document's names in order")
    }

    struct Expected: Equatable, CustomStringConvertible {
        var code: String
        var field: String?
        var description: String { field.map { "\(code) (\($0))" } ?? code }
    }

    /// `BAD_FRAME`, or `VALIDATION` (`field`).
    static func expected(_ cell: String) -> Expected {
        let words = cell.split(separator: " ", maxSplits: 1).map(String.init)
        let field = words.count > 1 ? unquoted(words[1]).trimmingCharacters(in: CharacterSet(charactersIn: "()")) : nil
        return Expected(code: unquoted(words[0]), field: field)
    }

    static let person = UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: 0x9a1b_0000_0000_0042)
    static let yearTenThousand: Int64 = 253_402_300_800_000

    enum Token { case all, withoutRead, withoutWrite, withoutAdmin, withoutOutcomesRead }

    /// The request of each documented case, and the token it is sent with.
    static let requests: [String: (Token, [UInt8])] = {
        func create(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
            RawConnection.frame(Opcode.create, id: 10) { w in
                w.writeU8(0)
                body(&w)
            }
        }
        /// A CREATE body with `person_id` and `title`, and `extra` fields written after them in bit order.
        func body(_ w: inout ByteWriter, values: [RecordField] = [], nulls: [RecordField] = [], write: (inout ByteWriter) -> Void = { _ in }) {
            w.writeU32(values.reduce(RecordField.personID.bit | RecordField.title.bit) { $0 | $1.bit })
            w.writeU32(nulls.reduce(0) { $0 | $1.bit })
            w.writeUUID(person)
            w.writeString("Documented refusal")
            write(&w)
        }
        func valid(_ make: (inout RecordBody) -> Void, key: String? = nil) -> [UInt8] {
            var b = RecordBody(personID: person, title: "Documented refusal")
            make(&b)
            return RawConnection.frame(Opcode.create, id: 10) { RecordMessages.encodeCreate(b, idempotencyKey: key, into: &$0) }
        }
        let someID = RecordID(high: 1, low: 2)
        let getWithTrailingByte = RawConnection.frame(Opcode.get, id: 10) { w in
            w.writeRecordID(someID)
            w.writeU8(0)
        }
        let emptyPatch = RawConnection.frame(Opcode.patch, id: 10) { RecordMessages.encodePatch(someID, RecordBody(), expectedUpdatedAt: nil, into: &$0) }
        func list(limit: UInt16, filters: UInt32, _ values: (inout ByteWriter) -> Void = { _ in }) -> [UInt8] {
            RawConnection.frame(Opcode.list, id: 10) { w in
                w.writeU16(limit)
                w.writeU32(filters)
                values(&w)
            }
        }
        return [
            "source-type-5": (.all, create { w in
                // source_type is bit 8, before person_id (13) and title (14) in bit order.
                w.writeU32(RecordField.sourceType.bit | RecordField.personID.bit | RecordField.title.bit)
                w.writeU32(0)
                w.writeU8(5)
                w.writeUUID(person)
                w.writeString("Documented refusal")
            }),
            "bool-byte-2": (.all, RawConnection.frame(Opcode.purgePerson, id: 10) { w in
                w.writeUUID(person)
                w.writeU8(2)
            }),
            "idempotency-key-129": (.all, valid({ _ in }, key: String(repeating: "k", count: 129))),
            "idempotency-key-empty": (.all, valid({ _ in }, key: "")),
            "trailing-byte": (.all, getWithTrailingByte),
            "decode-before-scope": (.withoutRead, getWithTrailingByte),
            "import-decode-before-scope": (.withoutAdmin, RawConnection.frame(Opcode.adminImport, id: 10) { $0.writeU8(7) }),
            "snapshot-decode-before-scope": (.withoutAdmin, RawConnection.frame(Opcode.adminSnapshot, id: 10) { $0.writeU8(7) }),
            "import-scope-before-row-validation": (.withoutAdmin, RawConnection.frame(Opcode.adminImport, id: 10) {
                AdminMessages.encodeImport(records: [], outcomeRows: [Array("not json".utf8)], into: &$0)
            }),
            "import-provider-empty": (.all, RawConnection.frame(Opcode.adminImport, id: 10) {
                var record = LearningRecord(
                    id: RecordID(high: 0x0190_0000_0000_0000, low: 7), tenantID: "t", createdAt: Timestamp(milliseconds: 1_700_000_000_000),
                    updatedAt: Timestamp(milliseconds: 1_700_000_000_000), createdBy: person, updatedBy: person, personID: person)
                record.title = "Documented refusal"
                record.provider = ""
                AdminMessages.encodeImport(records: [record], outcomeRows: [], into: &$0)
            }),
            "results-scope-before-cursor": (.withoutOutcomesRead, RawConnection.frame(Opcode.outcomeResults, id: 10) { w in
                w.writeU8(0)  // student scope
                w.writeString("a-student")
                w.writeU16(10)
                w.writeLengthPrefixed(Array("no-page-gave-this".utf8))
            }),
            "scope-before-validation": (.withoutWrite, emptyPatch),
            "patch-sets-nothing": (.all, emptyPatch),
            "list-empty-cursor": (.all, list(limit: 10, filters: 1 << 13) { $0.writeVarint(0) }),
            "list-limit-1001": (.all, list(limit: 1001, filters: 0)),
            "list-time-out-of-range": (.all, list(limit: 10, filters: 1 << 6) { $0.writeI64(yearTenThousand) }),
            "body-time-out-of-range": (.all, create { w in body(&w, values: [.completedAt]) { $0.writeI64(yearTenThousand) } }),
            "title-empty": (.all, valid { $0.title = .value("") }),
            "provider-empty": (.all, valid { $0.provider = .value("") }),
            "source-null": (.all, create { w in
                w.writeU32(RecordField.personID.bit | RecordField.title.bit)
                w.writeU32(RecordField.source.bit)
                w.writeUUID(person)
                w.writeString("Documented refusal")
            }),
            "unknown-method": (.all, RawConnection.frame(Opcode.outcomeAggregates, id: 10) {
                RollupMessages.encodeAggregates(
                    context: ContextRef(type: "Course", id: "1"),
                    options: RollupOptions(calculationOverride: .init(method: CalculationMethod("latset"))), into: &$0)
            }),
        ]
    }()

    @Test func everyDocumentedRefusalIsWhatTheServerAnswers() async throws {
        let table = Self.rows(try Self.section("6.3 Which check answers first"))
        let cases = table.map { (Self.unquoted($0[0]), Self.expected($0[2])) }
        #expect(Set(cases.map(\.0)) == Set(Self.requests.keys), "the document's cases and the test's requests")
        let server = try await TestServer.start()
        let everything = allScopes
        for (name, expected) in cases {
            guard let (token, frame) = Self.requests[name] else { continue }
            let scopes: Scopes = switch token {
            case .all: everything
            case .withoutRead: everything.subtracting(.recordsRead)
            case .withoutWrite: everything.subtracting(.recordsWrite)
            case .withoutAdmin: everything.subtracting(.admin)
            case .withoutOutcomesRead: everything.subtracting(.outcomesRead)
            }
            let signed = try await server.token(scopes: scopes)
            let raw = try RawConnection(port: server.port)
            let auth = try #require(await raw.handshake(token: signed))
            #expect(!auth.header.isError)
            raw.send(frame)
            let reply = try #require(await raw.receiveFrame(), "\(name): no answer")
            let error = raw.error(of: reply)
            let answer = error.map { Expected(code: $0.code.name, field: expected.field == nil ? nil : $0.field) }
            #expect(answer == expected, "\(name): \(String(describing: error))")
        }
        try await server.stop()
    }
}
