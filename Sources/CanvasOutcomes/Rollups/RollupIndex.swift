/// Scored results grouped the way rollups read them: (context, student) → outcome → results in id
/// order, all keyed by interned ordinals, plus each outcome's method and criterion scale precomputed.
/// A student's rollups for a course are one dictionary lookup and then pure arithmetic.
struct RollupIndex: Sendable {
    /// The scored results of one student for one outcome in one context, as parallel arrays so the
    /// inputs reach the calculator as one contiguous buffer.
    struct OutcomeResults: Sendable {
        var order: [CanvasIDOrder] = []
        var inputs: [RollupInput] = []

        mutating func insert(_ key: CanvasIDOrder, _ input: RollupInput) {
            let position = order.partitionPoint { $0 < key }
            if position < order.count, order[position] == key {
                inputs[position] = input
            } else {
                order.insert(key, at: position)
                inputs.insert(input, at: position)
            }
        }

        /// Removes `key`; true when nothing is left.
        mutating func remove(_ key: CanvasIDOrder) -> Bool {
            let position = order.partitionPoint { $0 < key }
            if position < order.count, order[position] == key {
                order.remove(at: position)
                inputs.remove(at: position)
            }
            return order.isEmpty
        }
    }

    /// One outcome's results within a bucket; a bucket keeps its slots in outcome-id order, so a
    /// student's rollups come out sorted without a sort.
    struct OutcomeSlot: Sendable {
        var order: CanvasIDOrder
        var outcome: Int32
        var results = OutcomeResults()
    }

    var students = Interner<String>()
    var contexts = Interner<ContextRef>()
    var outcomes = Interner<String>()
    var assets = Interner<AssetRef>()
    /// Key: context ordinal << 32 | student ordinal.
    var buckets: [UInt64: [OutcomeSlot]] = [:]
    var studentsByContext: [Int32: Set<Int32>] = [:]
    /// By outcome ordinal; nil while the outcome is unknown or deleted (its results then roll up to nothing).
    var outcomeConfigs: [OutcomeRollupConfig?] = []

    static func bucketKey(context: Int32, student: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: context)) << 32 | UInt64(UInt32(bitPattern: student))
    }

    /// Only results that can count: scored, not hidden, in a context (rollups are per course in Canvas).
    /// Deleted results never get here: they are tombstones.
    private static func counts(_ result: OutcomeResult) -> Bool {
        result.score != nil && result.hidden != true && result.resultContext != nil
    }

    mutating func add(_ result: OutcomeResult) {
        guard Self.counts(result), let score = result.score, let context = result.resultContext else { return }
        let contextOrdinal = contexts.intern(context)
        let student = students.intern(result.userUUID)
        let outcome = internOutcome(result.learningOutcomeID)
        let input = RollupInput(score: score, percent: result.percent, possible: result.possible,
                                time: result.submittedAt ?? result.assessedAt,
                                association: result.associatedAsset.map { assets.intern($0) } ?? -1,
                                isClassicQuiz: result.isClassicQuizResult)
        let key = Self.bucketKey(context: contextOrdinal, student: student)
        if buckets[key] == nil { studentsByContext[contextOrdinal, default: []].insert(student) }
        let order = CanvasIDOrder(result.learningOutcomeID)
        buckets[key, default: []].withSlot(order, outcome: outcome) { $0.results.insert(CanvasIDOrder(result.key), input) }
    }

    mutating func remove(_ result: OutcomeResult) {
        guard Self.counts(result), let context = result.resultContext,
              let contextOrdinal = contexts.ordinal(of: context), let student = students.ordinal(of: result.userUUID)
        else { return }
        let key = Self.bucketKey(context: contextOrdinal, student: student)
        guard var slots = buckets.removeValue(forKey: key) else { return }
        let position = slots.partitionPoint { $0.order < CanvasIDOrder(result.learningOutcomeID) }
        if position < slots.count, slots[position].order.key == result.learningOutcomeID,
           slots[position].results.remove(CanvasIDOrder(result.key)) {
            slots.remove(at: position)
        }
        if slots.isEmpty {
            studentsByContext[contextOrdinal]?.remove(student)
            if studentsByContext[contextOrdinal]?.isEmpty == true { studentsByContext[contextOrdinal] = nil }
        } else {
            buckets[key] = slots
        }
    }

    /// The slots of one student in one context, in outcome-id order.
    func slots(context: ContextRef, student: String) -> [OutcomeSlot]? {
        guard let contextOrdinal = contexts.ordinal(of: context), let studentOrdinal = students.ordinal(of: student) else {
            return nil
        }
        return buckets[Self.bucketKey(context: contextOrdinal, student: studentOrdinal)]
    }

    private mutating func internOutcome(_ id: String) -> Int32 {
        let ordinal = outcomes.intern(id)
        while outcomeConfigs.count <= Int(ordinal) { outcomeConfigs.append(nil) }
        return ordinal
    }

    mutating func setOutcome(_ outcome: LearningOutcome) {
        let ordinal = internOutcome(outcome.id)
        outcomeConfigs[Int(ordinal)] = OutcomeRollupConfig(outcome)
    }

    mutating func removeOutcome(id: String) {
        guard let ordinal = outcomes.ordinal(of: id) else { return }
        outcomeConfigs[Int(ordinal)] = nil
    }
}

extension Array where Element == RollupIndex.OutcomeSlot {
    /// Runs `body` on the slot for `order`, inserting an empty one in order first if needed.
    mutating func withSlot(_ order: CanvasIDOrder, outcome: Int32, _ body: (inout RollupIndex.OutcomeSlot) -> Void) {
        let position = partitionPoint { $0.order < order }
        if position == count || self[position].order != order {
            insert(RollupIndex.OutcomeSlot(order: order, outcome: outcome), at: position)
        }
        body(&self[position])
    }
}

/// What a rollup needs from an outcome, computed once per outcome version instead of once per query.
/// A class so reading it in the rollup loop is one retain rather than a copy of its fields.
final class OutcomeRollupConfig: Sendable {
    let outcomeID: String
    let order: CanvasIDOrder
    let method: CalculationMethod
    let calculationInt: Int?
    let criterionScale: RollupScale

    init(_ outcome: LearningOutcome) {
        outcomeID = outcome.id
        order = CanvasIDOrder(outcome.id)
        method = CalculationMethod(outcome.calculationMethod)
        calculationInt = outcome.calculationInt
        criterionScale = RollupScale(criterion: outcome.rubricCriterion)
    }
}

extension Array {
    /// The first index where `isBefore` is false, for a predicate true on a prefix.
    func partitionPoint(_ isBefore: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = low + (high - low) / 2
            if isBefore(self[middle]) { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
