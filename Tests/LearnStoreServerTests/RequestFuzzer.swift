import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreWorkload

/// Request frames for the live-server fuzz test: valid payloads of every opcode built with the real
/// codecs from random values, then damaged.
struct RequestFuzzer: Sendable {
    var random: SplitMix64
    /// Ids and a person that exist in the reference tenant, so reads hit and writes would matter.
    let knownIDs: [RecordID]
    let knownPerson: UUID16
    /// AUTH tokens the fuzzer may send; none of them may write to the reference tenant.
    let tokens: [String]

    static let events: [String] = [
        #"{"metadata":{"event_name":"learning_outcome_created","event_time":"2019-11-05T10:03:37.526Z"},"body":{"learning_outcome_id":"12345","context_type":"Course","context_id":"565","title":"Biology","calculation_method":"highest","workflow_state":"active"}}"#,
        #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"id":"9","learning_outcome_id":"12345","user_uuid":"u1","result_context_type":"Course","result_context_id":"565","score":2.5,"possible":3,"assessed_at":"2024-01-01T00:00:00Z","workflow_state":"active"}}"#,
        #"{"metadata":{"event_name":"outcome_proficiency_created"},"body":{"outcome_proficiency_id":"1","context_type":"Course","context_id":"565","workflow_state":"active","outcome_proficiency_ratings":[{"outcome_proficiency_rating_id":"1","description":"Mastery","points":3,"mastery":true,"color":"02672D","workflow_state":"active"}]}}"#,
        #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":1e308,"calculation_int":99999999999999999999}}"#,
        #"{"metadata":{"event_name":"learning_outcome_group_created"},"body":{"learning_outcome_group_id":"7","context_type":"Course","context_id":"565","parent_outcome_group_id":"7","workflow_state":"active"}}"#,
        "{", "[]", "",
    ]

    static let opcodes: [UInt8] = [
        Opcode.hello, Opcode.auth, Opcode.ping, Opcode.info, Opcode.create, Opcode.createBatch, Opcode.get, Opcode.patch,
        Opcode.delete, Opcode.restore, Opcode.purgePerson, Opcode.list, Opcode.stats, Opcode.outcomeIngest, Opcode.outcomeGet,
        Opcode.outcomeTree, Opcode.outcomeResults, Opcode.outcomeProficiency, Opcode.outcomeRollup, Opcode.outcomeStudentRollups,
        Opcode.outcomeAggregates, 0x00, 0x19, 0x48, 0x80, 0xA3, 0xFF,
    ]

    mutating func chance(_ numerator: Int, in denominator: Int) -> Bool { Int.random(in: 0..<denominator, using: &random) < numerator }

    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }

    mutating func string() -> String {
        chance(1, in: 10) ? String(repeating: "x", count: [0, 65, 257, 513, 4097][Int.random(in: 0..<5, using: &random)])
            : ["AWS SAA", "CRED-1", "edm", "é中😀", "", "Course", "565", "u1", "12345"].randomElement(using: &random)!
    }

    mutating func time() -> Timestamp {
        chance(1, in: 6) ? Timestamp(milliseconds: [Int64.min, Int64.max, -62_135_596_800_001][Int.random(in: 0..<3, using: &random)])
            : Timestamp(milliseconds: Int64.random(in: 0...2_000_000_000_000, using: &random))
    }

    mutating func id() -> RecordID { chance(1, in: 2) ? knownIDs.randomElement(using: &random)! : RecordID(high: random.next(), low: random.next()) }

    mutating func person() -> UUID16 { chance(1, in: 2) ? knownPerson : UUID16.random(using: &random) }

    mutating func body() -> RecordBody {
        var body = RecordBody(personID: person(), title: string())
        if chance(1, in: 2) { body.provider = .value(string()) }
        if chance(1, in: 2) { body.completedAt = .value(time()) }
        if chance(1, in: 3) { body.expiresAt = chance(1, in: 2) ? .value(time()) : .null }
        if chance(1, in: 2) { body.score = .value([0, 50, 100, 101, -1, .nan, .infinity][Int.random(in: 0..<7, using: &random)]) }
        if chance(1, in: 3) { body.passed = .value(chance(1, in: 2)) }
        if chance(1, in: 4) { body.certificationRef = .value(string()) }
        if chance(1, in: 8) { body.title = .null }
        if chance(1, in: 8) { body.stampedFieldsSent = [.tenantID] }
        return body
    }

    mutating func context() -> ContextRef { chance(3, in: 4) ? ContextRef(type: "Course", id: "565") : ContextRef(type: string(), id: string()) }

    mutating func options() -> RollupOptions {
        var options = RollupOptions()
        if chance(1, in: 3) { options.scale = .outcomeCriterion }
        if chance(1, in: 3) {
            options.calculationOverride = RollupOptions.CalculationOverride(
                method: CalculationMethod(["latest", "n_mastery", "decaying_average", string()].randomElement(using: &random)!),
                calculationInt: chance(1, in: 2) ? Int.random(in: -10...200, using: &random) : nil)
        }
        return options
    }

    /// A valid payload for `opcode` (empty for opcodes without one).
    mutating func payload(_ opcode: UInt8) -> [UInt8] {
        var w = ByteWriter()
        switch opcode {
        case Opcode.hello:
            HelloRequest(minimumVersion: UInt16.random(in: 0...2, using: &random), maximumVersion: UInt16.random(in: 0...2, using: &random),
                         clientName: string()).encode(into: &w)
        case Opcode.auth:
            AuthRequest(token: chance(3, in: 4) ? tokens.randomElement(using: &random)! : string()).encode(into: &w)
        case Opcode.ping: w.writeBytes(bytes(chance(1, in: 8) ? 65 : Int.random(in: 0...64, using: &random)))
        case Opcode.create: RecordMessages.encodeCreate(body(), idempotencyKey: chance(1, in: 3) ? string() : nil, into: &w)
        case Opcode.createBatch:
            let bodies = (0..<Int.random(in: 0...3, using: &random)).map { _ in body() }
            RecordMessages.encodeCreateBatch(bodies, idempotencyKey: nil, into: &w)
        case Opcode.get, Opcode.delete, Opcode.restore: w.writeRecordID(id())
        case Opcode.patch: RecordMessages.encodePatch(id(), body(), expectedUpdatedAt: chance(1, in: 3) ? time() : nil, into: &w)
        case Opcode.purgePerson: RecordMessages.encodePurge(person(), dryRun: chance(1, in: 2), into: &w)
        case Opcode.list:
            var query = ListQuery(limit: [0, 5, 1000, 1001][Int.random(in: 0..<4, using: &random)])
            if chance(1, in: 2) { query.personID = person() }
            if chance(1, in: 3) { query.provider = string() }
            if chance(1, in: 3) { query.completedAt = TimeRange(from: time(), to: chance(1, in: 2) ? time() : nil) }
            if chance(1, in: 3) { query.expiresAt = TimeRange(to: time()) }
            if chance(1, in: 4) { query.updatedSince = time() }
            query.includeDeleted = chance(1, in: 2)
            query.order = chance(1, in: 2) ? .ascending : .descending
            if chance(1, in: 4) { query.cursor = ListCursor(createdAt: 0, id: id(), fingerprint: random.next(), order: query.order) }
            ListQueryCodec.encode(query, into: &w)
        case Opcode.outcomeIngest:
            let events = (0..<Int.random(in: 0...3, using: &random)).map { _ in Array(Self.events.randomElement(using: &random)!.utf8) }
            OutcomeMessages.encodeIngest(events, into: &w)
        case Opcode.outcomeGet: OutcomeMessages.encodeGet(OutcomeEntityKind.allCases.randomElement(using: &random)!, key: string(), into: &w)
        case Opcode.outcomeTree:
            let queries: [OutcomeTreeQuery] = [.contextOutcomes(context()), .contextGroups(context()), .groupChildren(groupID: string()),
                                               .groupPath(groupID: "7"), .outcomeLinks(outcomeID: string())]
            OutcomeMessages.encodeTree(queries.randomElement(using: &random)!, into: &w)
        case Opcode.outcomeResults:
            let scopes: [ResultScope] = [.student("u1"), .outcome("12345"), .context(context()), .assessedBetween(from: time(), to: time())]
            OutcomeMessages.encodeResults(scopes.randomElement(using: &random)!, after: nil, limit: Int.random(in: 0...1001, using: &random), into: &w)
        case Opcode.outcomeProficiency: OutcomeMessages.writeContext(context(), into: &w)
        case Opcode.outcomeRollup:
            RollupMessages.encodeRollup(userUUID: "u1", outcomeID: string(), context: context(), options: options(), into: &w)
        case Opcode.outcomeStudentRollups: RollupMessages.encodeStudentRollups(userUUID: "u1", context: context(), options: options(), into: &w)
        case Opcode.outcomeAggregates: RollupMessages.encodeAggregates(context: context(), options: options(), into: &w)
        case Opcode.info, Opcode.stats: break
        default: w.writeBytes(bytes(Int.random(in: 0...16, using: &random)))
        }
        return w.bytes
    }

    /// Damages a payload (its frame's length is computed afterwards, so framing stays intact).
    mutating func mutate(_ payload: [UInt8]) -> [UInt8] {
        var bytes = payload
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<7, using: &random) {
            case 0 where !bytes.isEmpty:
                for _ in 0..<Int.random(in: 1...4, using: &random) { bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random) }
            case 1: bytes.removeLast(Int.random(in: 0...bytes.count, using: &random))
            case 2: bytes += self.bytes(Int.random(in: 1...32, using: &random))
            case 3 where !bytes.isEmpty: bytes[Int.random(in: 0..<bytes.count, using: &random)] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF].randomElement(using: &random)!
            case 4: bytes.insert(contentsOf: [UInt8](repeating: 0xFF, count: Int.random(in: 1...11, using: &random)), at: Int.random(in: 0...bytes.count, using: &random))
            case 5 where bytes.count >= 4:
                let at = Int.random(in: 0...(bytes.count - 4), using: &random)
                let word = [UInt32.max, 0x8000_0000, 1 << 23, 0xFFFF, 0x7F].randomElement(using: &random)!
                for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: word >> (8 * UInt32(index))) }
            default: bytes = self.bytes(Int.random(in: 0...64, using: &random))
            }
        }
        return bytes
    }

    /// One request frame: usually valid, often with a damaged payload, sometimes with bad flags.
    mutating func frame(id: UInt32) -> (header: FrameHeader, payload: [UInt8]) {
        let opcode = Self.opcodes.randomElement(using: &random)!
        var payload = self.payload(opcode)
        if chance(2, in: 5) { payload = mutate(payload) }
        let flags: UInt8 = chance(1, in: 20) ? UInt8.random(in: 1...255, using: &random) : 0
        return (FrameHeader(opcode: opcode, flags: flags, requestID: id), payload)
    }
}
