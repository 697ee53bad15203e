import LearnStoreModel

/// Rollups straight from the rollup index: one lookup per student, then arithmetic on ordinals.
extension OutcomeStore {
    /// One student's rollups for every outcome they have scored results for in `context`, by outcome id.
    /// Outcomes the store does not hold (or holds deleted) have no rollup, nor do outcomes without a
    /// scored result: no rollup is not a rollup of 0.
    public func studentRollups(userUUID: String, context: ContextRef,
                               options: RollupOptions = RollupOptions()) -> [StudentOutcomeRollup] {
        let index = indexes.rollups
        guard let slots = index.slots(context: context, student: userUUID) else { return [] }
        let shared = sharedScale(for: context, options)
        var rollups: [StudentOutcomeRollup] = []
        rollups.reserveCapacity(slots.count)
        for slot in slots {
            guard let config = index.outcomeConfigs[Int(slot.outcome)],
                  let rollup = Self.rollup(slot.results, config, userUUID: userUUID, context: context,
                                           scale: shared ?? config.criterionScale, options)
            else { continue }
            rollups.append(rollup)
        }
        return rollups
    }

    /// One student's rollup for one outcome in `context`, or nil when there is none.
    public func studentRollup(userUUID: String, outcomeID: String, context: ContextRef,
                              options: RollupOptions = RollupOptions()) -> StudentOutcomeRollup? {
        let index = indexes.rollups
        let order = CanvasIDOrder(outcomeID)
        guard let slots = index.slots(context: context, student: userUUID) else { return nil }
        let position = slots.partitionPoint { $0.order < order }
        guard position < slots.count, slots[position].order == order,
              let config = index.outcomeConfigs[Int(slots[position].outcome)]
        else { return nil }
        return Self.rollup(slots[position].results, config, userUUID: userUUID, context: context,
                           scale: sharedScale(for: context, options) ?? config.criterionScale, options)
    }

    /// Every student's rollups in `context`, students by uuid, each student's by outcome id.
    public func contextRollups(context: ContextRef, options: RollupOptions = RollupOptions()) -> [StudentOutcomeRollup] {
        studentsWithResults(in: context).flatMap { studentRollups(userUUID: $0, context: context, options: options) }
    }

    /// Students with at least one countable result in `context`, by uuid.
    public func studentsWithResults(in context: ContextRef) -> [String] {
        let index = indexes.rollups
        guard let contextOrdinal = index.contexts.ordinal(of: context),
              let students = index.studentsByContext[contextOrdinal]
        else { return [] }
        return students.map { index.students[$0] }.sorted()
    }

    /// Per outcome, the mean and median of the students' rollups in `context` and how they fall into the
    /// scale's ratings, by outcome id. Outcomes no student has a rollup for are absent (Canvas reports a
    /// nil score for them). Students are summed in uuid order: Canvas sums in sortable-name order, which
    /// events do not carry, and a compensated sum makes the order immaterial in practice.
    public func contextAggregates(context: ContextRef,
                                  options: RollupOptions = RollupOptions()) -> [ContextOutcomeAggregate] {
        let index = indexes.rollups
        guard let contextOrdinal = index.contexts.ordinal(of: context),
              let students = index.studentsByContext[contextOrdinal]
        else { return [] }
        let shared = sharedScale(for: context, options)
        let ordered = students.sorted { index.students[$0] < index.students[$1] }
        var scores: [Int32: (values: [Double], results: Int, latest: Timestamp?)] = [:]
        for student in ordered {
            guard let slots = index.buckets[RollupIndex.bucketKey(context: contextOrdinal, student: student)] else { continue }
            for slot in slots {
                guard let config = index.outcomeConfigs[Int(slot.outcome)],
                      let score = Self.score(slot.results, config, scale: shared ?? config.criterionScale, options)
                else { continue }
                var collected = scores[slot.outcome] ?? ([], 0, nil)
                collected.values.append(score.score)
                collected.results += score.count
                if let time = score.latestTime, collected.latest.map({ time > $0 }) ?? true { collected.latest = time }
                scores[slot.outcome] = collected
            }
        }
        var aggregates: [(CanvasIDOrder, ContextOutcomeAggregate)] = []
        for (outcome, collected) in scores {
            guard let config = index.outcomeConfigs[Int(outcome)] else { continue }
            let values = collected.values
            let scale = shared ?? config.criterionScale
            var counts = Array(repeating: 0, count: scale.ratings.count)
            for value in values { if let rating = scale.ratingIndex(for: value) { counts[rating] += 1 } }
            let sorted = values.sorted()
            let median = (sorted[(sorted.count - 1) / 2] + sorted[sorted.count / 2]) / 2.0
            let mean = RubyFloat.round(RubyFloat.sum(values) / Double(values.count))
            aggregates.append((config.order, ContextOutcomeAggregate(
                outcomeID: config.outcomeID, context: context, mean: mean, median: median,
                studentCount: values.count, resultCount: collected.results, latestAssessedAt: collected.latest,
                mastered: scale.isMastered(mean), rating: scale.ratingIndex(for: mean).map { scale.ratings[$0] },
                ratingCounts: counts, scale: scale)))
        }
        aggregates.sort { $0.0 < $1.0 }
        return aggregates.map(\.1)
    }

    /// The scale every outcome of this query shares (a proficiency), or nil to use each outcome's criterion.
    func sharedScale(for context: ContextRef, _ options: RollupOptions) -> RollupScale? {
        guard case .proficiency(let of) = options.scale, let proficiency = proficiency(inForce: of ?? context) else {
            return nil
        }
        return RollupScale(proficiency: proficiency)
    }

    private static func score(_ results: RollupIndex.OutcomeResults, _ config: OutcomeRollupConfig,
                              scale: RollupScale, _ options: RollupOptions) -> RollupScore? {
        let method = options.calculationOverride?.method ?? config.method
        let int = options.calculationOverride.map(\.calculationInt) ?? config.calculationInt
        return results.inputs.withUnsafeBufferPointer { inputs in
            RollupCalculator.rollup(inputs, method: method, calculationInt: int, pointsPossible: scale.pointsPossible,
                                    masteryPoints: scale.masteryPoints, newDecayingAverage: options.newDecayingAverage)
        }
    }

    private static func rollup(_ results: RollupIndex.OutcomeResults, _ config: OutcomeRollupConfig,
                               userUUID: String, context: ContextRef, scale: RollupScale,
                               _ options: RollupOptions) -> StudentOutcomeRollup? {
        guard let score = score(results, config, scale: scale, options) else { return nil }
        return StudentOutcomeRollup(
            userUUID: userUUID, outcomeID: config.outcomeID, context: context, score: score.score, count: score.count,
            latestAssessedAt: score.latestTime, mastered: scale.isMastered(score.score),
            rating: scale.ratingIndex(for: score.score).map { scale.ratings[$0] },
            method: options.calculationOverride?.method ?? config.method, scaleSource: scale.source)
    }
}
