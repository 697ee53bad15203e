import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport

/// What one decoder made of one payload.
enum FuzzVerdict: Equatable {
    case decoded
    case rejected
    /// Something a decoder must never do: an error offset outside the payload, or a value that does
    /// not survive its own re-encoding.
    case problem(String)
}

/// One message of the protocol: how to make a valid payload of it from random values, and the
/// decoder a peer runs on it (the server for requests, the client for responses).
struct FuzzTarget: Sendable {
    let name: String
    let opcode: UInt8
    let generate: @Sendable (inout SeededGenerator) -> [UInt8]
    let check: @Sendable ([UInt8]) -> FuzzVerdict

    /// Decodes `payload`; a value that decodes must re-encode to bytes that decode to the same bytes
    /// again (encode ∘ decode is a fixed point after one step), so no decoder accepts what it would
    /// then misrepresent.
    static func verdict<T>(_ payload: [UInt8], _ decode: (inout ByteReader) throws(DecodeError) -> T,
                           reencode: ((T, inout ByteWriter) -> Void)? = nil) -> FuzzVerdict {
        let value: T
        do {
            value = try payload.withByteReader(decode)
        } catch {
            return (0...payload.count).contains(error.offset) ? .rejected : .problem("error offset \(error.offset) outside 0...\(payload.count): \(error)")
        }
        guard let reencode else { return .decoded }
        var first = ByteWriter()
        reencode(value, &first)
        do {
            let again = try first.bytes.withByteReader(decode)
            var second = ByteWriter()
            reencode(again, &second)
            return first.bytes == second.bytes ? .decoded : .problem("re-encoding is not stable: \(hex(first.bytes)) then \(hex(second.bytes))")
        } catch {
            return .problem("its own re-encoding does not decode: \(error); re-encoded \(hex(first.bytes))")
        }
    }

    static func payload(_ body: (inout ByteWriter) -> Void) -> [UInt8] {
        var writer = ByteWriter()
        body(&writer)
        return writer.bytes
    }
}

/// Random values of every type the messages carry, biased towards limits.
enum FuzzValues {
    static let alphabet: [String] = ["a", "Z", "0", "-", "_", ".", " ", "é", "ß", "中", "😀", "\u{0}", "\""]

    static func string(_ random: inout SeededGenerator, maximum: Int = 24) -> String {
        switch Int.random(in: 0..<20, using: &random) {
        case 0: return ""
        case 1: return String(repeating: "x", count: [255, 256, 257, 1024, 1025, 4096, 4097][Int.random(in: 0..<7, using: &random)])
        default:
            let count = Int.random(in: 1...maximum, using: &random)
            return (0..<count).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &random)] }.joined()
        }
    }

    static func uuid(_ random: inout SeededGenerator) -> UUID16 {
        random.chance(1, in: 8) ? .zero : UUID16.random(using: &random)
    }

    static func time(_ random: inout SeededGenerator) -> Timestamp {
        switch Int.random(in: 0..<8, using: &random) {
        case 0: return Timestamp(milliseconds: [Int64.min, Int64.max, 0, -1, Timestamp.minimum.milliseconds - 1,
                                                Timestamp.maximum.milliseconds + 1][Int.random(in: 0..<6, using: &random)])
        default: return Timestamp(milliseconds: Int64.random(in: Timestamp.minimum.milliseconds...Timestamp.maximum.milliseconds, using: &random))
        }
    }

    static func double(_ random: inout SeededGenerator) -> Double {
        switch Int.random(in: 0..<6, using: &random) {
        case 0: return [Double.nan, .infinity, -.infinity, -0.0, 100.000001, .greatestFiniteMagnitude][Int.random(in: 0..<6, using: &random)]
        default: return Double.random(in: 0...100, using: &random)
        }
    }

    static func update<T>(_ random: inout SeededGenerator, _ value: (inout SeededGenerator) -> T) -> FieldUpdate<T> {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return .absent
        case 1: return .null
        default: return .value(value(&random))
        }
    }

    static func body(_ random: inout SeededGenerator) -> RecordBody {
        var body = RecordBody()
        body.personID = update(&random) { uuid(&$0) }
        body.title = update(&random) { string(&$0) }
        body.provider = update(&random) { string(&$0) }
        body.completedAt = update(&random) { time(&$0) }
        body.expiresAt = update(&random) { time(&$0) }
        body.score = update(&random) { double(&$0) }
        body.passed = update(&random) { $0.chance(1, in: 2) }
        body.certificationRef = update(&random) { string(&$0) }
        body.linkedCohortID = update(&random) { uuid(&$0) }
        body.linkedAssessmentID = update(&random) { uuid(&$0) }
        body.source = update(&random) { string(&$0) }
        body.sourceType = update(&random) { SourceType.allCases.randomElement(using: &$0)! }
        if random.chance(1, in: 8) { body.stampedFieldsSent = RecordField.allCases.filter { $0.isServerStamped && random.chance(1, in: 4) } }
        return body
    }

    static func record(_ random: inout SeededGenerator) -> LearningRecord {
        func maybe<T>(_ value: (inout SeededGenerator) -> T) -> T? { random.chance(1, in: 2) ? value(&random) : nil }
        return LearningRecord(
            id: RecordID(high: random.next(), low: random.next()), tenantID: string(&random), appID: maybe { string(&$0) },
            createdAt: time(&random), updatedAt: time(&random), createdBy: maybe { uuid(&$0) }, updatedBy: maybe { uuid(&$0) },
            source: string(&random), sourceType: SourceType.allCases.randomElement(using: &random)!, isDeleted: random.chance(1, in: 2),
            deletedAt: maybe { time(&$0) }, deletedBy: maybe { uuid(&$0) }, schemaVersion: Int.random(in: 0...65535, using: &random),
            personID: uuid(&random), title: maybe { string(&$0) }, provider: maybe { string(&$0) },
            completedAt: maybe { time(&$0) }, expiresAt: maybe { time(&$0) }, score: maybe { double(&$0) },
            passed: maybe { $0.chance(1, in: 2) }, certificationRef: maybe { string(&$0) },
            linkedCohortID: maybe { uuid(&$0) }, linkedAssessmentID: maybe { uuid(&$0) })
    }

    static func listQuery(_ random: inout SeededGenerator) -> ListQuery {
        func maybe<T>(_ value: (inout SeededGenerator) -> T) -> T? { random.chance(1, in: 3) ? value(&random) : nil }
        var query = ListQuery(limit: [0, 1, 50, 1000, 1001, 65535][Int.random(in: 0..<6, using: &random)])
        query.personID = maybe { uuid(&$0) }
        query.certificationRef = maybe { string(&$0) }
        query.linkedCohortID = maybe { uuid(&$0) }
        query.linkedAssessmentID = maybe { uuid(&$0) }
        query.provider = maybe { string(&$0) }
        query.passed = maybe { $0.chance(1, in: 2) }
        if random.chance(1, in: 3) { query.completedAt = TimeRange(from: maybe { time(&$0) }, to: maybe { time(&$0) }) }
        if random.chance(1, in: 3) { query.expiresAt = TimeRange(from: maybe { time(&$0) }, to: maybe { time(&$0) }) }
        query.updatedSince = maybe { time(&$0) }
        query.includeDeleted = random.chance(1, in: 2)
        query.order = random.chance(1, in: 2) ? .ascending : .descending
        query.cursor = maybe { r in
            ListCursor(createdAt: Int64.random(in: .min ... .max, using: &r), id: RecordID(high: r.next(), low: r.next()),
                       fingerprint: r.next(), order: r.chance(1, in: 2) ? .ascending : .descending)
        }
        return query
    }

    static func context(_ random: inout SeededGenerator) -> ContextRef {
        random.chance(1, in: 2) ? course : ContextRef(type: string(&random), id: string(&random))
    }

    static func options(_ random: inout SeededGenerator) -> RollupOptions {
        var options = RollupOptions()
        switch Int.random(in: 0..<3, using: &random) {
        case 0: options.scale = .outcomeCriterion
        case 1: options.scale = .proficiency(of: context(&random))
        default: break
        }
        options.newDecayingAverage = random.chance(1, in: 2)
        if random.chance(1, in: 2) {
            let method = CalculationMethod(["highest", "latest", "n_mastery", "decaying_average", "average", string(&random)].randomElement(using: &random)!)
            options.calculationOverride = RollupOptions.CalculationOverride(method: method, calculationInt: random.chance(1, in: 2) ? Int.random(in: -5...100, using: &random) : nil)
        }
        return options
    }

    /// Live events as Canvas sends them (compact), valid and not.
    static let events: [String] = [
        #"{"metadata":{"event_name":"learning_outcome_created","event_time":"2019-11-05T10:03:37.526Z","root_account_id":"21070000000000001"},"body":{"learning_outcome_id":"12345","context_type":"Course","context_id":"1234","title":"Molecular biology","calculation_method":"highest","calculation_int":65,"workflow_state":"active","rubric_criterion":{"description":"d","mastery_points":2,"points_possible":3,"ratings":[{"description":"fluent","points":3},{"description":"none","points":0}]}}}"#,
        #"{"metadata":{"event_name":"learning_outcome_result_created","event_time":"2019-11-05T10:03:37.526Z"},"body":{"id":"1","learning_outcome_id":"12345","user_uuid":"u1","result_context_type":"Course","result_context_id":"1234","score":2.5,"possible":3,"percent":0.83,"mastery":false,"attempt":1,"assessed_at":"2024-01-01T00:00:00Z","workflow_state":"active"}}"#,
        #"{"metadata":{"event_name":"outcome_proficiency_created"},"body":{"outcome_proficiency_id":"1","context_type":"Account","context_id":"1","workflow_state":"active","outcome_proficiency_ratings":[{"outcome_proficiency_rating_id":"1","description":"Mastery","points":3,"mastery":true,"color":"02672D","workflow_state":"active"}]}}"#,
        #"{"metadata":{"event_name":"learning_outcome_group_updated"},"body":{"learning_outcome_group_id":"75033","context_type":"Course","context_id":"32054","title":"Standards","parent_outcome_group_id":"75032","updated_at":"2019-11-05T13:38:00.218Z","workflow_state":"deleted"}}"#,
        #"{"metadata":{"event_name":"learning_outcome_link_created"},"body":{"learning_outcome_link_id":"12345678","learning_outcome_id":"1201234","learning_outcome_group_id":"123456","context_type":"Course","context_id":"565","workflow_state":"active"}}"#,
        #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}"#,
        #"{"metadata":{},"body":{}}"#, "[]", "", #"{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
    ]

    static let entities: [OutcomeEntity] = [
        .outcome(OutcomeMessageTests.outcome), .result(OutcomeMessageTests.result),
        .group(OutcomeGroup(id: "100", contextType: "Course", contextID: "565", parentOutcomeGroupID: "99")),
        .link(OutcomeLink(id: "5000", learningOutcomeID: "1000", learningOutcomeGroupID: "100")),
        .proficiency(OutcomeProficiency(id: "1", contextType: "Course", contextID: "565", ratings: [
            OutcomeProficiencyRating(id: "1", description: "Mastery", points: 3, mastery: true, color: "03893D"),
        ])),
    ]

    static func entity(_ random: inout SeededGenerator) -> OutcomeEntity { entities.randomElement(using: &random)! }

    static func rollup(_ random: inout SeededGenerator) -> StudentOutcomeRollup {
        StudentOutcomeRollup(
            userUUID: "u", outcomeID: string(&random), context: course, score: double(&random), count: Int.random(in: 0...1000, using: &random),
            latestAssessedAt: random.chance(1, in: 2) ? time(&random) : nil, mastered: random.chance(1, in: 2),
            rating: random.chance(1, in: 2) ? proficiencyScale.ratings.randomElement(using: &random)! : nil,
            method: [.highest, .latest, .decayingAverage, .unknown(string(&random))].randomElement(using: &random)!,
            scaleSource: random.chance(1, in: 2) ? .outcomeCriterion : .proficiency(id: string(&random)))
    }

    static func aggregate(_ random: inout SeededGenerator) -> ContextOutcomeAggregate {
        ContextOutcomeAggregate(
            outcomeID: string(&random), context: course, mean: double(&random), median: double(&random),
            studentCount: Int.random(in: 0...100, using: &random), resultCount: Int.random(in: 0...100, using: &random),
            latestAssessedAt: random.chance(1, in: 2) ? time(&random) : nil, mastered: random.chance(1, in: 2),
            rating: random.chance(1, in: 2) ? proficiencyScale.ratings[0] : nil, ratingCounts: [1, 0, 3], scale: proficiencyScale)
    }

    static func ingestOutcome(_ random: inout SeededGenerator) -> EventOutcome {
        switch Int.random(in: 0..<4, using: &random) {
        case 0: return .applied(.outcome, key: string(&random))
        case 1: return .duplicate(.result, key: string(&random))
        case 2: return .stale(.proficiency, key: string(&random))
        default: return .rejected(EventRejection(reason: .missingField, error: .validation(string(&random), field: string(&random))))
        }
    }
}

extension FuzzTarget {
    typealias V = FuzzValues
    static let cursorToken = ResultCursor(token: "r1.0000018cc2a1e400.313030303031")!

    /// Every payload decoder the server runs on client bytes, and every one the client runs on server bytes.
    static let all: [FuzzTarget] = [
        // Requests, decoded by the server.
        FuzzTarget(name: "HELLO request", opcode: Opcode.hello, generate: { r in
            payload { HelloRequest(minimumVersion: UInt16.random(in: 0...3, using: &r), maximumVersion: UInt16.random(in: 0...3, using: &r),
                                   clientName: V.string(&r)).encode(into: &$0) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try HelloRequest.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) }),
        FuzzTarget(name: "AUTH request", opcode: Opcode.auth, generate: { r in
            payload { AuthRequest(token: V.string(&r, maximum: 300)).encode(into: &$0) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try AuthRequest.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) }),
        FuzzTarget(name: "CREATE request", opcode: Opcode.create, generate: { r in
            payload { RecordMessages.encodeCreate(V.body(&r), idempotencyKey: r.chance(1, in: 2) ? V.string(&r) : nil, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeCreate(from: &r) },
                    reencode: { v, w in RecordMessages.encodeCreate(v.0, idempotencyKey: v.1, into: &w) })
        }),
        FuzzTarget(name: "CREATE_BATCH request", opcode: Opcode.createBatch, generate: { r in
            let count = Int.random(in: 0...4, using: &r)
            let bodies = (0..<count).map { _ in V.body(&r) }
            return payload { RecordMessages.encodeCreateBatch(bodies, idempotencyKey: r.chance(1, in: 2) ? V.string(&r) : nil, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeCreateBatch(from: &r, maximumCount: 1000) },
                    reencode: { v, w in RecordMessages.encodeCreateBatch(v.0, idempotencyKey: v.1, into: &w) })
        }),
        FuzzTarget(name: "GET/DELETE/RESTORE request", opcode: Opcode.get, generate: { r in
            payload { $0.writeRecordID(RecordID(high: r.next(), low: r.next())) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeID(from: &r) }, reencode: { v, w in w.writeRecordID(v) }) }),
        FuzzTarget(name: "PATCH request", opcode: Opcode.patch, generate: { r in
            payload { RecordMessages.encodePatch(RecordID(high: r.next(), low: r.next()), V.body(&r), expectedUpdatedAt: r.chance(1, in: 2) ? V.time(&r) : nil, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodePatch(from: &r) },
                    reencode: { v, w in RecordMessages.encodePatch(v.0, v.1, expectedUpdatedAt: v.2, into: &w) })
        }),
        FuzzTarget(name: "PURGE_PERSON request", opcode: Opcode.purgePerson, generate: { r in
            payload { RecordMessages.encodePurge(V.uuid(&r), dryRun: r.chance(1, in: 2), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodePurge(from: &r) },
                    reencode: { v, w in RecordMessages.encodePurge(v.0, dryRun: v.1, into: &w) })
        }),
        FuzzTarget(name: "LIST request", opcode: Opcode.list, generate: { r in
            payload { ListQueryCodec.encode(V.listQuery(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try ListQueryCodec.decode(from: &r) }, reencode: { v, w in
                var query = v.0
                // Cursor bytes this server never issued are well-framed but have no ListCursor; they are left out.
                if let bytes = v.cursorBytes, let cursor = try? ListCursor(bytes: bytes) { query.cursor = cursor }
                ListQueryCodec.encode(query, into: &w)
            })
        }),
        FuzzTarget(name: "OUTCOME_INGEST request", opcode: Opcode.outcomeIngest, generate: { r in
            let count = Int.random(in: 0...3, using: &r)
            let events = (0..<count).map { _ in Array(V.events.randomElement(using: &r)!.utf8) }
            return payload { OutcomeMessages.encodeIngest(events, into: &$0) }
        }, check: { payload in
            let frame = verdict(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) },
                                reencode: { v, w in OutcomeMessages.encodeIngest(v, into: &w) })
            guard frame == .decoded, let events = try? payload.withByteReader({ (r) throws(DecodeError) in try OutcomeMessages.decodeIngest(from: &r, maximumCount: 1000) })
            else { return frame }
            // The server parses each event; a malformed one is a typed per-event rejection.
            for event in events {
                _ = try? OutcomeEvent.parse(bytes: event)
            }
            return frame
        }),
        FuzzTarget(name: "OUTCOME_GET request", opcode: Opcode.outcomeGet, generate: { r in
            payload { OutcomeMessages.encodeGet(OutcomeEntityKind.allCases.randomElement(using: &r)!, key: V.string(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) }, reencode: { v, w in OutcomeMessages.encodeGet(v.0, key: v.1, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_TREE request", opcode: Opcode.outcomeTree, generate: { r in
            let queries: [OutcomeTreeQuery] = [.contextOutcomes(V.context(&r)), .contextGroups(V.context(&r)), .contextLinks(V.context(&r)),
                                               .groupLinks(groupID: V.string(&r)), .outcomeLinks(outcomeID: V.string(&r)),
                                               .groupChildren(groupID: V.string(&r)), .groupPath(groupID: V.string(&r))]
            return payload { OutcomeMessages.encodeTree(queries.randomElement(using: &r)!, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeTree(from: &r) }, reencode: { v, w in OutcomeMessages.encodeTree(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_RESULTS request", opcode: Opcode.outcomeResults, generate: { r in
            let scopes: [ResultScope] = [.student(V.string(&r)), .outcome(V.string(&r)), .context(V.context(&r)),
                                         .asset(AssetRef(type: V.string(&r), id: V.string(&r))), .assessedBetween(from: V.time(&r), to: V.time(&r))]
            return payload { OutcomeMessages.encodeResults(scopes.randomElement(using: &r)!, after: r.chance(1, in: 2) ? cursorToken : nil,
                                                           limit: Int.random(in: 0...1001, using: &r), into: &$0) }
        }, check: { payload in
            let frame = verdict(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) })
            if frame == .decoded, let request = try? payload.withByteReader({ (r) throws(DecodeError) in try OutcomeMessages.decodeResults(from: &r) }) {
                _ = try? OutcomeMessages.cursor(request.cursor)
            }
            return frame
        }),
        FuzzTarget(name: "OUTCOME_PROFICIENCY request", opcode: Opcode.outcomeProficiency, generate: { r in
            payload { OutcomeMessages.writeContext(V.context(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeContextRequest(from: &r) },
                    reencode: { v, w in OutcomeMessages.writeContext(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_ROLLUP request", opcode: Opcode.outcomeRollup, generate: { r in
            payload { RollupMessages.encodeRollup(userUUID: V.string(&r), outcomeID: V.string(&r), context: V.context(&r), options: V.options(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }, reencode: { v, w in
                RollupMessages.encodeRollup(userUUID: v.userUUID, outcomeID: v.outcomeID, context: v.context, options: v.options, into: &w)
            })
        }),
        FuzzTarget(name: "OUTCOME_STUDENT_ROLLUPS request", opcode: Opcode.outcomeStudentRollups, generate: { r in
            payload { RollupMessages.encodeStudentRollups(userUUID: V.string(&r), context: V.context(&r), options: V.options(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }, reencode: { v, w in
                RollupMessages.encodeStudentRollups(userUUID: v.userUUID, context: v.context, options: v.options, into: &w)
            })
        }),
        FuzzTarget(name: "OUTCOME_AGGREGATES request", opcode: Opcode.outcomeAggregates, generate: { r in
            payload { RollupMessages.encodeAggregates(context: V.context(&r), options: V.options(&r), into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }, reencode: { v, w in
                RollupMessages.encodeAggregates(context: v.context, options: v.options, into: &w)
            })
        }),

        // Responses, decoded by the client.
        FuzzTarget(name: "HELLO response", opcode: Opcode.hello, generate: { r in
            payload { HelloResponse(version: 1, serverVersion: V.string(&r), maximumFrameBytes: UInt32.random(in: 0...UInt32.max, using: &r),
                                    maximumInFlight: 1024, features: ProtocolFeatures(rawValue: r.next())).encode(into: &$0) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try HelloResponse.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) }),
        FuzzTarget(name: "AUTH response", opcode: Opcode.auth, generate: { r in
            payload { AuthResponse(identity: CallerIdentity(tenantID: V.string(&r), appID: r.chance(1, in: 2) ? V.string(&r) : nil, personID: V.uuid(&r),
                                                            scopes: Scopes(rawValue: UInt32.random(in: 0...31, using: &r))),
                                   expiresAt: V.time(&r)).encode(into: &$0) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try AuthResponse.decode(from: &r) }, reencode: { v, w in v.encode(into: &w) }) }),
        FuzzTarget(name: "error body", opcode: Opcode.get, generate: { r in
            payload { ErrorBody.encode(LearnStoreError(LearnStoreError.Code.all.randomElement(using: &r)!, V.string(&r), field: r.chance(1, in: 2) ? V.string(&r) : nil), into: &$0) }
        }, check: { verdict($0, { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }, reencode: { v, w in ErrorBody.encode(v, into: &w) }) }),
        FuzzTarget(name: "record (GET response)", opcode: Opcode.get, generate: { r in
            RecordCodec.encode(V.record(&r))
        }, check: { verdict($0, { (r) throws(DecodeError) in try RecordCodec.decodeRecord(from: &r) }, reencode: { v, w in RecordCodec.encode(v, into: &w) }) }),
        FuzzTarget(name: "CREATE response", opcode: Opcode.create, generate: { r in
            payload { w in w.writeU64(r.next()); w.writeU8(UInt8.random(in: 0...1, using: &r)); RecordCodec.encode(V.record(&r), into: &w) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true) }, reencode: { v, w in
                w.writeU64(v.0); w.writeU8(v.1 ? 1 : 0); RecordCodec.encode(v.2, into: &w)
            })
        }),
        FuzzTarget(name: "PATCH response", opcode: Opcode.patch, generate: { r in
            payload { w in w.writeU64(r.next()); RecordCodec.encode(V.record(&r), into: &w) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: false) }, reencode: { v, w in
                w.writeU64(v.0); RecordCodec.encode(v.2, into: &w)
            })
        }),
        FuzzTarget(name: "CREATE_BATCH response", opcode: Opcode.createBatch, generate: { r in
            let records = (0..<Int.random(in: 0...3, using: &r)).map { _ in V.record(&r) }
            return payload { w in w.writeU64(r.next()); w.writeU8(0); w.writeVarint(UInt64(records.count)); for x in records { RecordCodec.encode(x, into: &w) } }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) }, reencode: { v, w in
                w.writeU64(v.0); w.writeU8(v.1 ? 1 : 0); w.writeVarint(UInt64(v.2.count)); for x in v.2 { RecordCodec.encode(x, into: &w) }
            })
        }),
        FuzzTarget(name: "LIST response", opcode: Opcode.list, generate: { r in
            let records = (0..<Int.random(in: 0...3, using: &r)).map { _ in V.record(&r) }
            let cursor = r.chance(1, in: 2) ? [] : ListCursor(createdAt: 1, id: RecordID(high: 1, low: 1), fingerprint: r.next(), order: .descending).bytes
            return payload { w in w.writeVarint(UInt64(records.count)); for x in records { RecordCodec.encode(x, into: &w) }; w.writeLengthPrefixed(cursor) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }, reencode: { v, w in
                w.writeVarint(UInt64(v.0.count)); for x in v.0 { RecordCodec.encode(x, into: &w) }; w.writeLengthPrefixed(v.1)
            })
        }),
        FuzzTarget(name: "OUTCOME_INGEST response", opcode: Opcode.outcomeIngest, generate: { r in
            let outcomes = (0..<Int.random(in: 0...4, using: &r)).map { _ in V.ingestOutcome(&r) }
            return payload { OutcomeMessages.encodeIngestResponse(sequence: r.next(), outcomes, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) }, reencode: { v, w in
                OutcomeMessages.encodeIngestResponse(sequence: v.sequence, v.outcomes, into: &w)
            })
        }),
        FuzzTarget(name: "OUTCOME_GET response", opcode: Opcode.outcomeGet, generate: { r in
            payload { OutcomeMessages.writeEntity(V.entity(&r), into: &$0) }
        }, check: { payload in
            for kind in OutcomeEntityKind.allCases {
                let verdict = verdict(payload, { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(kind, from: &r) },
                                      reencode: { v, w in OutcomeMessages.writeEntity(v, into: &w) })
                if verdict != .rejected { return verdict }
            }
            return .rejected
        }),
        FuzzTarget(name: "OUTCOME_TREE response", opcode: Opcode.outcomeTree, generate: { r in
            let entities = (0..<Int.random(in: 0...3, using: &r)).map { _ in V.entity(&r) }
            return payload { OutcomeMessages.encodeEntities(entities, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) }, reencode: { v, w in OutcomeMessages.encodeEntities(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_RESULTS response", opcode: Opcode.outcomeResults, generate: { r in
            let page = ResultPage(results: (0..<Int.random(in: 0...2, using: &r)).map { _ in OutcomeMessageTests.result }, next: r.chance(1, in: 2) ? cursorToken : nil)
            return payload { OutcomeMessages.encodeResultPage(page, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) }, reencode: { v, w in OutcomeMessages.encodeResultPage(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_PROFICIENCY response", opcode: Opcode.outcomeProficiency, generate: { r in
            guard case .proficiency(let proficiency) = V.entities[4] else { return [] }
            return payload { OutcomeMessages.encodeProficiencyResponse(r.chance(1, in: 2) ? proficiency : nil, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) }, reencode: { v, w in
                OutcomeMessages.encodeProficiencyResponse(v, into: &w)
            })
        }),
        FuzzTarget(name: "OUTCOME_ROLLUP response", opcode: Opcode.outcomeRollup, generate: { r in
            payload { RollupMessages.encodeRollupResponse(r.chance(1, in: 2) ? V.rollup(&r) : nil, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollupResponse(from: &r, userUUID: "u", context: course) },
                    reencode: { v, w in RollupMessages.encodeRollupResponse(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_STUDENT_ROLLUPS response", opcode: Opcode.outcomeStudentRollups, generate: { r in
            let rollups = (0..<Int.random(in: 0...3, using: &r)).map { _ in V.rollup(&r) }
            return payload { RollupMessages.encodeRollupsResponse(rollups, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeRollupsResponse(from: &r, userUUID: "u", context: course) },
                    reencode: { v, w in RollupMessages.encodeRollupsResponse(v, into: &w) })
        }),
        FuzzTarget(name: "OUTCOME_AGGREGATES response", opcode: Opcode.outcomeAggregates, generate: { r in
            let aggregates = (0..<Int.random(in: 0...2, using: &r)).map { _ in V.aggregate(&r) }
            return payload { RollupMessages.encodeAggregatesResponse(aggregates, into: &$0) }
        }, check: {
            verdict($0, { (r) throws(DecodeError) in try RollupMessages.decodeAggregatesResponse(from: &r, context: course) },
                    reencode: { v, w in RollupMessages.encodeAggregatesResponse(v, into: &w) })
        }),
    ]
}
