/// Canvas's rollup arithmetic (`RollupScore` and `RollupScoreAggregatorHelper`), operation for operation
/// in IEEE doubles so results match Ruby's to the bit before the final `round(2)`. Pure and allocation-free
/// for the usual handful of results per outcome.
public enum RollupCalculator {
    /// The rollup of one student's scored results for one outcome, or nil when Canvas would give none
    /// (no results, n_mastery short of n mastered results, an unknown method).
    ///
    /// - Parameters:
    ///   - inputs: scored results in result-id order.
    ///   - newDecayingAverage: Canvas's `outcomes_new_decaying_average_calculation` flag.
    public static func rollup(_ inputs: [RollupInput], method: CalculationMethod, calculationInt: Int?,
                              scale: RollupScale, newDecayingAverage: Bool = true) -> RollupScore? {
        inputs.withUnsafeBufferPointer { buffer in
            rollup(buffer, method: method, calculationInt: calculationInt, pointsPossible: scale.pointsPossible,
                   masteryPoints: scale.masteryPoints, newDecayingAverage: newDecayingAverage)
        }
    }

    static func rollup(_ inputs: UnsafeBufferPointer<RollupInput>, method: CalculationMethod, calculationInt: Int?,
                       pointsPossible: Double, masteryPoints: Double, newDecayingAverage: Bool) -> RollupScore? {
        let count = inputs.count
        guard count > 0, let formula = method.formula(newDecayingAverage: newDecayingAverage) else { return nil }
        let int = method.effectiveCalculationInt(calculationInt)
        // Canvas checks the result count before the mastery filter (a redundant but observable guard).
        if formula == .nMastery, let n = int, count < n { return nil }
        let perPoint = pointsPossible > 0 ? pointsPossible : masteryPoints
        let aggregateQuizzes = method.aggregatesClassicQuizzes

        let value: Double? = withUnsafeTemporaryAllocation(of: Double.self, capacity: count) { scores in
            for index in 0..<count {
                scores[index] = score(at: index, of: inputs, perPoint: perPoint, aggregateQuizzes: aggregateQuizzes)
            }
            return apply(formula, int: int, scores: UnsafeBufferPointer(scores), inputs: inputs,
                         masteryPoints: masteryPoints)
        }
        guard let value, value.isFinite else { return nil }
        // `latest_result`: Ruby's max_by keeps the first of equal maxima, i.e. the lowest id.
        var latest = 0
        for index in 1..<count where inputs[index].orderSeconds > inputs[latest].orderSeconds { latest = index }
        return RollupScore(score: RubyFloat.round(value), count: count, latestTime: inputs[latest].time)
    }

    /// A result's score on the outcome scale (`result_score`), or for a classic quiz under the
    /// aggregating methods its quiz's points-weighted percent (`get_aggregates` /
    /// `alignment_aggregate_score`). NaN marks a quiz result with nothing to aggregate; it is dropped.
    private static func score(at index: Int, of inputs: UnsafeBufferPointer<RollupInput>, perPoint: Double,
                              aggregateQuizzes: Bool) -> Double {
        let input = inputs[index]
        if aggregateQuizzes && input.isClassicQuiz {
            var total = 0.0
            var weighted = 0.0
            for other in inputs where other.association == input.association {
                // Canvas skips results without `possible` and raises on a nil percent; we skip both.
                guard let possible = other.possible, let percent = other.percent else { continue }
                total += possible
                weighted += possible * percent
            }
            return total == 0 ? .nan : (weighted / total) * perPoint
        }
        // A percent of 0.0 is truthy in Ruby, so it scales like any other.
        if let percent = input.percent { return percent * perPoint }
        return input.score
    }

    private static func apply(_ formula: RollupFormula, int: Int?, scores: UnsafeBufferPointer<Double>,
                              inputs: UnsafeBufferPointer<RollupInput>, masteryPoints: Double) -> Double? {
        switch formula {
        case .highest:
            var best: Double?
            for score in scores where !score.isNaN && score > (best ?? -.infinity) { best = score }
            return best
        case .average:
            var sum = CompensatedSum()
            var kept = 0
            for score in scores where !score.isNaN { sum.add(score); kept += 1 }
            return kept == 0 ? nil : sum.value / Double(kept)
        case .nMastery:
            // The mean of every mastered result (not the top or latest n); nil with fewer than n of them.
            var sum = CompensatedSum()
            var kept = 0
            for score in scores where !score.isNaN && score >= masteryPoints { sum.add(score); kept += 1 }
            guard let n = int, kept >= n, kept > 0 else { return nil }
            return sum.value / Double(kept)
        case .latest:
            // The last of a stable sort by time: the newest, and the highest id among equal times.
            var latest: Int?
            for index in 0..<scores.count where !scores[index].isNaN {
                if let current = latest, inputs[index].orderSeconds < inputs[current].orderSeconds { continue }
                latest = index
            }
            return latest.map { scores[$0] }
        case .legacyWeightedAverage, .standardDecayingAverage:
            let weight = int ?? 65
            return withUnsafeTemporaryAllocation(of: Int.self, capacity: scores.count) { order in
                let kept = chronological(scores: scores, inputs: inputs, into: order)
                guard kept > 0 else { return nil }
                if kept == 1 { return scores[order[0]] }
                if formula == .legacyWeightedAverage {
                    let latest = scores[order[kept - 1]]
                    var older = CompensatedSum()
                    for position in 0..<(kept - 1) { older.add(scores[order[position]]) }
                    return latest * (0.01 * Double(weight))
                        + (older.value / Double(kept - 1)) * (0.01 * Double(100 - weight))
                }
                let remaining = 0.01 * Double(100 - weight)
                let decay = 0.01 * Double(weight)
                var average = scores[order[0]] * remaining + scores[order[1]] * decay
                for position in 2..<kept { average = average * remaining + scores[order[position]] * decay }
                return average
            }
        }
    }

    /// Indices of the kept scores in a stable sort by whole-second time (ties stay in id order),
    /// written to `order`; returns how many.
    private static func chronological(scores: UnsafeBufferPointer<Double>, inputs: UnsafeBufferPointer<RollupInput>,
                                      into order: UnsafeMutableBufferPointer<Int>) -> Int {
        var kept = 0
        for index in 0..<scores.count where !scores[index].isNaN {
            order[kept] = index
            kept += 1
        }
        if kept <= 32 {
            for position in 1..<max(kept, 1) {
                let index = order[position]
                let time = inputs[index].orderSeconds
                var slot = position
                while slot > 0, inputs[order[slot - 1]].orderSeconds > time {
                    order[slot] = order[slot - 1]
                    slot -= 1
                }
                order[slot] = index
            }
        } else {
            let sorted = order[0..<kept].sorted { a, b in
                let (ta, tb) = (inputs[a].orderSeconds, inputs[b].orderSeconds)
                return ta != tb ? ta < tb : a < b
            }
            for (position, index) in sorted.enumerated() { order[position] = index }
        }
        return kept
    }
}
