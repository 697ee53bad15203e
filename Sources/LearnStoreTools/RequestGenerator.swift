import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreWorkload

/// Writes the requests of one load connection: picks each request's kind from the mix and its
/// target (a record, a person, a body) from the tenant's data. One instance per connection, used
/// only on that connection's event loop.
///
/// Its mutable state skips Swift's dynamic exclusivity checks: they cost the load tool about 7 % of
/// its CPU on pipelined reads (CPU the server under test then lacked on this 2-core machine), and
/// nothing here is reentrant (each method runs to completion on one thread, and no property is
/// passed `inout` to code that reads it).
final class RequestGenerator {
    private let mix: [(BenchWorkload, Int)]
    private let totalWeight: UInt64
    private let bodies: [RecordBody]
    private let ingestBatches: [[[UInt8]]]
    private let course: CanvasCourseDataset?
    private let rollupOptions = RollupOptions()
    @exclusivity(unchecked) private var rng: SplitMix64
    @exclusivity(unchecked) private var ids: PrefetchingPicker<RecordID>
    @exclusivity(unchecked) private var persons: PrefetchingPicker<UUID16>
    @exclusivity(unchecked) private var createIndex: Int
    @exclusivity(unchecked) private var ingestIndex: Int

    init(mix: [(BenchWorkload, Int)], ids: [RecordID], persons: [UUID16], bodies: [RecordBody],
         ingestBatches: [[[UInt8]]], course: CanvasCourseDataset?, seed: UInt64) {
        self.mix = mix
        self.totalWeight = UInt64(mix.reduce(0) { $0 + $1.1 })
        self.bodies = bodies
        self.ingestBatches = ingestBatches
        self.course = course
        var rng = SplitMix64(seed: seed)
        self.ids = PrefetchingPicker(ids, using: &rng)
        self.persons = PrefetchingPicker(persons, using: &rng)
        self.rng = rng
        self.createIndex = Int(seed % UInt64(max(1, bodies.count)))
        self.ingestIndex = Int(seed % 13)
    }

    // A created record completes at 1_700_000_000_000 + r % 31_536_000_000 ms and expires 730 days on.
    private static let createdCompletionBase: Int64 = 1_700_000_000_000
    private static let createdCompletionSpread: UInt64 = 31_536_000_000
    private static let createdExpiryAfter: Int64 = 63_072_000_000

    /// Writes the next request's payload; returns its opcode and the index of its kind in the mix.
    func next(into writer: inout ByteWriter) -> (opcode: UInt8, kind: Int) {
        var kind = 0
        if mix.count > 1 {
            var pick = Int(rng.next() % totalWeight)
            while pick >= mix[kind].1 { pick -= mix[kind].1; kind += 1 }
        }
        switch mix[kind].0 {
        case .get:
            writer.writeRecordID(ids.next(using: &rng))
            return (Opcode.get, kind)
        case .listByPerson:
            ListQueryCodec.encode(ListQuery(personID: persons.next(using: &rng)), into: &writer)
            return (Opcode.list, kind)
        case .create:
            createIndex = createIndex + 1 == bodies.count ? 0 : createIndex + 1
            // The categorical fields (title, provider, score, app) come from a pool of the data
            // set's bodies; what varies between a real service's creates is drawn per request: a
            // random person of the tenant, a completion time uniform over a year (expiring two years later in 70 % of records), and its own credential reference,
            // cohort and assessment ids. Reusing the pool's would repeat keys and times that
            // real records do not repeat.
            var created = bodies[createIndex]
            created.personID = .value(persons.next(using: &rng))
            let completed = Self.createdCompletionBase + Int64(rng.next() % Self.createdCompletionSpread)
            created.completedAt = .value(Timestamp(milliseconds: completed))
            created.expiresAt = rng.next() % 10 < 7 ? .value(Timestamp(milliseconds: completed + Self.createdExpiryAfter)) : .absent
            created.certificationRef = .value(PeerDataset.freshCertificationRef(like: created.certificationRef.valueOrNil, using: &rng))
            created.linkedCohortID = .value(UUID16.random(using: &rng))
            created.linkedAssessmentID = .value(UUID16.random(using: &rng))
            RecordMessages.encodeCreate(created, idempotencyKey: nil, into: &writer)
            return (Opcode.create, kind)
        case .patch:
            var patch = RecordBody()
            patch.score = .value(Double(rng.next() % 101))
            RecordMessages.encodePatch(ids.next(using: &rng), patch, expectedUpdatedAt: nil, into: &writer)
            return (Opcode.patch, kind)
        case .delete:
            writer.writeRecordID(ids.next(using: &rng))
            return (Opcode.delete, kind)
        case .outcomesIngest:
            ingestIndex = (ingestIndex + 1) % ingestBatches.count
            OutcomeMessages.encodeIngest(ingestBatches[ingestIndex], into: &writer)
            return (Opcode.outcomeIngest, kind)
        case .rollup:
            let course = course!
            let student = course.students[Int(rng.next() % UInt64(course.students.count))]
            RollupMessages.encodeStudentRollups(userUUID: student, context: course.context, options: rollupOptions, into: &writer)
            return (Opcode.outcomeStudentRollups, kind)
        }
    }
}
