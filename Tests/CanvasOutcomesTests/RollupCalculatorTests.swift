import LearnStoreModel
import LearnStoreTestSupport
import Testing
@testable import CanvasOutcomes

/// `time` in Canvas's specs (Time.zone.now); days are whole days before or after it.
let specTime = ts("2024-03-10T12:00:00Z")
func day(_ offset: Int) -> Timestamp { Timestamp(milliseconds: specTime.milliseconds + Int64(offset) * 86_400_000) }

/// A user's scored results for one outcome, in result-id order, as `rollup_user_results` feeds them:
/// nil scores are dropped first.
func inputs(_ scores: [Double?], times: [Timestamp?]? = nil) -> [RollupInput] {
    scores.enumerated().compactMap { index, score in
        score.map { RollupInput(score: $0, time: times?[index]) }
    }
}

func roll(_ inputs: [RollupInput], _ method: String?, int: Int? = nil, criterion: RubricCriterion? = nil,
          newDecayingAverage: Bool = true) -> Double? {
    RollupCalculator.rollup(inputs, method: CalculationMethod(method), calculationInt: int,
                            scale: RollupScale(criterion: criterion), newDecayingAverage: newDecayingAverage)?.score
}

/// A classic-quiz result (`create_quiz_outcome_results`): score 1.0 unless given, assessed at `time`.
func quiz(percent: Double, possible: Double, association: Int32, at time: Timestamp = specTime,
          score: Double = 1) -> RollupInput {
    RollupInput(score: score, percent: percent, possible: possible, time: time, association: association,
                isClassicQuiz: true)
}

let fiveFive = RubricCriterion(masteryPoints: 5, pointsPossible: 5)

@Suite struct RubyRoundingTests {
    @Test(arguments: [
        (4.125, 4.13), (1.005, 1.01), (3.175, 3.18), (2.875, 2.88), (3.375, 3.38), (3.475, 3.48),
        (2.675, 2.68), (0.285, 0.29), (1.015, 1.02), (4.12, 4.12), (4.1249999, 4.12), (3.5275, 3.53),
        (2.123, 2.12), (10.0 / 3.0, 3.33), (-1.005, -1.01), (-4.125, -4.13), (0.0, 0.0), (5.0, 5.0),
        (1e20, 1e20), (1e-10, 0.0), (0.004999, 0.0), (0.005, 0.01),
    ])
    func roundsHalfAwayFromZeroOnTheDecimalValue(value: Double, expected: Double) {
        #expect(RubyFloat.round(value) == expected)
    }

    @Test func naiveBinaryRoundingWouldBeWrong() {
        // Why the Ruby algorithm is needed: x*100 rounded in binary misses these (1.005 * 100 is
        // 100.49999999999999 in binary).
        for value in [1.005, 1.015, 0.285] {
            #expect((value * 100).rounded(.toNearestOrAwayFromZero) / 100 != RubyFloat.round(value))
        }
    }

    @Test func arraySumIsCompensatedLikeRuby() {
        #expect(RubyFloat.sum(Array(repeating: 0.1, count: 10)) == 1.0)
        #expect(Array(repeating: 0.1, count: 10).reduce(0, +) != 1.0)
        #expect(RubyFloat.sum([1e100, 1.0, -1e100]) == 1.0)
        #expect(RubyFloat.sum([] as [Double]) == 0)
        #expect(RubyFloat.sum([1, .infinity, 2]) == .infinity)
        #expect(RubyFloat.sum([.infinity, -.infinity]).isNaN)
    }
}

/// Transcribed from instructure/canvas-lms spec/lib/outcomes/result_analytics_spec.rb (current master).
/// Canvas's `outcome_from_score` results have no percent, so the raw score is used; outcomes without a
/// criterion get the default one (points_possible 5, mastery 3).
@Suite struct CanvasResultAnalyticsSpecTests {
    @Test func returnsMaximumScoreWhenNoMethodIsSet() {
        let score = RollupCalculator.rollup(inputs([3.0, 1.0]), method: CalculationMethod(nil), calculationInt: nil,
                                            scale: RollupScale(criterion: nil))
        #expect(score?.score == 3.0)
        #expect(score?.count == 2)
    }

    @Test func returnsMaximumScoreWhenHighestScoreMethodIsSelected() {
        #expect(roll(inputs([3.0, 1.0]), "highest") == 3.0)
    }

    @Test func returnsCorrectScoreWhenLatestScoreMethodIsSelected() {
        #expect(roll(inputs([4.0, 3.0, 1.0], times: [nil, specTime, day(-1)]), "latest") == 3.0)
    }

    @Test func properlyCalculatesResultsWhenMethodIsNNumberOfScoresForMastery() {
        let cases: [([Double], Int)] = [
            ([3.0, 1.0], 3), ([3.0, 1.0, 2.0], 3), ([4.0, 5.0, 1.0, 3.0, 2.0, 3.0], 3),
            ([1.0, 2.0], 1), ([1.0, 2.0, 3.0], 1), ([1.0, 2.0, 3.0, 4.0], 1),
        ]
        #expect(cases.map { roll(inputs($0.0), "n_mastery", int: $0.1) } == [nil, nil, 3.75, nil, 3.0, 3.5])
    }

    @Test func doesNotErrorOutAndCorrectlyAveragesWhenAResultHasAScoreOfNil() {
        #expect(roll(inputs([4.0, 5.0, 1.0, 3.0, nil, 3.0]), "n_mastery", int: 3) == 3.75)
    }

    @Test func properlyCalculatesResultsWhenMethodIsDecayingAverage() {
        #expect(roll(inputs([3.0], times: [specTime]), "decaying_average", int: 75) == 3.0)
        #expect(roll(inputs([4.0, 5.0, 1.0, 3.0], times: [day(0), day(-1), day(-2), day(-3)]),
                     "decaying_average", int: 75) == 3.75)
    }

    @Test func properlySortsResultsWhenThereIsNoSubmittedAtTimeOnOneOrManyResults() {
        #expect(roll(inputs([3.0, 2.0], times: [day(0), day(-1)]), "decaying_average", int: 65) == 2.65)
        // The last result has only submitted_at: ordering uses submitted_at ?? assessed_at.
        #expect(roll(inputs([4.0, 5.0, 1.0, 3.0], times: [day(0), day(-1), day(-2), day(-3)]),
                     "decaying_average", int: 75) == 3.75)
    }

    @Test func roundsResultsForDecayingAverageAndNMasteryMethods() {
        #expect(roll(inputs([3.0, 2.0], times: [day(0), day(-1)]), "decaying_average", int: 65) == 2.65)
        #expect(roll(inputs([2.123]), "decaying_average", int: 65) == 2.12)
        #expect(roll(inputs([3.0, 4.0, 3.0]), "n_mastery", int: 3) == 3.33)
    }

    @Test func properlyCalculatesResultsForNewStandardDecayingAverageMethodWhenFeatureFlagIsOn() {
        #expect(roll(inputs([3.0], times: [specTime]), "standard_decaying_average", int: 65) == 3.0)
        #expect(roll(inputs([2.0, 3.0, 4.0], times: [day(0), day(1), day(2)]), "standard_decaying_average", int: 65) == 3.53)
    }

    @Test func properlyCalculatesResultsForOldDecayingAverageMethodWhenFeatureFlagIsOff() {
        let scores = inputs([2.0, 3.0, 4.0], times: [day(0), day(1), day(2)])
        #expect(roll(scores, "decaying_average", int: 65, newDecayingAverage: false) == 3.48)
        // With the flag off, standard_decaying_average also runs the legacy formula.
        #expect(roll(scores, "standard_decaying_average", int: 65, newDecayingAverage: false) == 3.48)
        // decaying_average is the legacy formula whatever the flag.
        #expect(roll(scores, "decaying_average", int: 65, newDecayingAverage: true) == 3.48)
    }

    @Test func doesNotErrorOutWhenAResultHasANilScoreWithStandardDecayingAverage() {
        #expect(roll(inputs([2.0, 3.0, nil, 4.0]), "standard_decaying_average", int: 65) == 3.53)
    }

    @Test func correctlyHandlesUsersWithTheSameName() {
        // No times: equal sort keys keep id order, so the later result is "latest".
        #expect(roll(inputs([5.0, 4.0]), "decaying_average") == 4.35)
        #expect(roll(inputs([3.0, 2.0]), "decaying_average") == 2.35)
    }

    @Test func scalesQuizScoresToRubricScore() {
        let res1 = [quiz(percent: 0.4, possible: 1, association: 1, score: 7),
                    quiz(percent: 0.9, possible: 1, association: 2, at: day(-1), score: 12)]
        let res2 = [quiz(percent: 0.2, possible: 1, association: 1, score: 30),
                    quiz(percent: 0.5, possible: 1, association: 2, score: 75),
                    quiz(percent: 0.8, possible: 1, association: 3, score: 120)]
        let res3 = [quiz(percent: 0.2, possible: 1, association: 1, score: 90),
                    quiz(percent: 0.7, possible: 1, association: 2, score: 75),
                    quiz(percent: 0.8, possible: 1, association: 3, score: 120),
                    quiz(percent: 0.9, possible: 1, association: 4, score: 100)]
        #expect(roll(res1, "decaying_average", int: 65) == 2.88)  // 2.875: half away from zero
        #expect(roll(res2, "n_mastery", int: 3) == nil)
        #expect(roll(res3, "n_mastery", int: 3) == 4.0)
    }

    @Test func doesNotCreateFalseMatches() {
        let res1 = [quiz(percent: 0.6, possible: 1, association: 1),
                    quiz(percent: 0.7, possible: 1, association: 2, at: day(-1)),
                    quiz(percent: 0.4, possible: 1, association: 3, at: day(-2))]
        let res2 = [quiz(percent: 0.6, possible: 2, association: 1),
                    quiz(percent: 0.7, possible: 3, association: 2, at: day(-1))]
        // The second result shares association_id 1 but is an Assignment's rubric result: another key.
        var assignment = quiz(percent: 0.6, possible: 1, association: 1001, at: day(-1))
        assignment.isClassicQuiz = false
        let res3 = [quiz(percent: 0.6, possible: 1, association: 1), assignment]
        var assignment4 = quiz(percent: 0.7, possible: 3, association: 1001, at: day(-1))
        assignment4.isClassicQuiz = false
        let res4 = [quiz(percent: 0.6, possible: 2, association: 1), assignment4]
        #expect([res1, res2, res3, res4].map { roll($0, "decaying_average", int: 65, criterion: fiveFive) }
            == [2.91, 3.18, 3.0, 3.18])
    }

    @Test func properlyAlignsAndWeightsDecayingAverageResultsForMatches() {
        let res1 = [quiz(percent: 0.6, possible: 1, association: 1), quiz(percent: 0.7, possible: 1, association: 1),
                    quiz(percent: 0.4, possible: 1, association: 1),
                    quiz(percent: 0.5, possible: 1, association: 2, at: day(-1)),
                    quiz(percent: 0.8, possible: 1, association: 2, at: day(-1)),
                    quiz(percent: 0.6, possible: 1, association: 2, at: day(-1))]
        let res2 = [quiz(percent: 0.6, possible: 3, association: 1), quiz(percent: 0.1, possible: 5, association: 1),
                    quiz(percent: 0.4, possible: 2, association: 1),
                    quiz(percent: 0.5, possible: 5, association: 2, at: day(-1)),
                    quiz(percent: 0.8, possible: 2, association: 2, at: day(-1)),
                    quiz(percent: 0.6, possible: 3, association: 2, at: day(-1))]
        let res3 = [quiz(percent: 0.6, possible: 2, association: 1), quiz(percent: 0.7, possible: 3, association: 1)]
        #expect([res1, res2, res3].map { roll($0, "decaying_average", int: 65, criterion: fiveFive) } == [2.9, 1.84, 3.3])
    }

    @Test func properlyAlignsAndWeightsLatestScoreResultsForMatches() {
        let res1 = [quiz(percent: 0.6, possible: 1, association: 1), quiz(percent: 0.7, possible: 1, association: 1),
                    quiz(percent: 0.4, possible: 1, association: 1),
                    quiz(percent: 0.5, possible: 1, association: 2, at: day(-1)),
                    quiz(percent: 0.6, possible: 1, association: 2, at: day(-1)),
                    quiz(percent: 0.8, possible: 1, association: 2, at: day(-1))]
        let res2 = [quiz(percent: 0.6, possible: 3, association: 1), quiz(percent: 0.1, possible: 5, association: 1),
                    quiz(percent: 0.4, possible: 2, association: 1),
                    quiz(percent: 0.5, possible: 5, association: 2, at: day(-1)),
                    quiz(percent: 0.8, possible: 2, association: 2, at: day(-1)),
                    quiz(percent: 0.6, possible: 3, association: 2, at: day(-1))]
        #expect([res1, res2].map { roll($0, "latest", criterion: fiveFive) } == [2.83, 1.55])
    }

    static let sixQuestions = [
        quiz(percent: 0.6, possible: 1, association: 1), quiz(percent: 0.7, possible: 1, association: 1),
        quiz(percent: 0.4, possible: 1, association: 1), quiz(percent: 0.5, possible: 1, association: 2, at: day(-1)),
        quiz(percent: 0.6, possible: 1, association: 2, at: day(-1)), quiz(percent: 0.8, possible: 1, association: 2, at: day(-1)),
    ]

    @Test func doesNotUseAggregateScoreWhenCalculationMethodIsHighest() {
        #expect(roll(Self.sixQuestions, "highest", criterion: fiveFive) == 4.0)
    }

    @Test func doesNotUseAggregateScoreWhenCalculationMethodIsNMastery() {
        // 3.375 rounds half away from zero.
        #expect(roll(Self.sixQuestions, "n_mastery", int: 3) == 3.38)
    }

    @Test func fallsBackToUsingMasteryScoreIfPointsPossibleIsZero() {
        let criterion = RubricCriterion(masteryPoints: 3, pointsPossible: 0)
        #expect(roll([quiz(percent: 0.7, possible: 1, association: 1, score: 10)], "latest", criterion: criterion) == 2.1)
    }
}

/// The worked values of the reference notes (§2.4, from Canvas's rollup_score_spec.rb).
@Suite struct RollupMethodTests {
    static let oneToFive = inputs([1, 2, 3, 4, 5], times: [day(0), day(1), day(2), day(3), day(4)])

    @Test func standardDecayingAverageIsIterative() {
        #expect(roll(Self.oneToFive, "standard_decaying_average", int: 65) == 4.47)
        #expect(roll(inputs([2, 3, 4], times: [day(0), day(1), day(2)]), "standard_decaying_average", int: 65) == 3.53)
    }

    @Test func legacyWeightedAverageUsesTheMeanOfTheOlderResults() {
        // 5 * 0.65 + mean(1..4) * 0.35 = 4.125 → 4.13
        #expect(roll(Self.oneToFive, "decaying_average", int: 65) == 4.13)
        #expect(roll(Self.oneToFive, "weighted_average", int: 65) == 4.13)
        #expect(roll(Self.oneToFive, "weighted_average", int: 20) == 3.0)  // 5*0.2 + 2.5*0.8
    }

    @Test func nMasteryAveragesEveryMasteredResultNotTheTopN() {
        #expect(roll(inputs([4, 5, 1, 3, 2, 3]), "n_mastery", int: 3) == 3.75)
        // Equal to the mastery points counts as mastered; just below does not.
        #expect(roll(inputs([3]), "n_mastery", int: 1) == 3.0)
        #expect(roll(inputs([2.99]), "n_mastery", int: 1) == nil)
    }

    @Test func averageAndHighestAndLatest() {
        #expect(roll(inputs([1, 2, 4]), "average") == 2.33)
        #expect(roll(inputs(Array(repeating: 0.1, count: 10)), "average") == 0.1)
        #expect(roll(inputs([1, 4, 2]), "highest") == 4)
        #expect(roll(inputs([1, 4, 2], times: [day(2), day(0), day(1)]), "latest") == 1)
    }

    @Test func noResultsOrAnUnknownMethodIsNoRollup() {
        for method in [nil, "highest", "latest", "average", "n_mastery", "decaying_average", "standard_decaying_average"] {
            #expect(roll([], method) == nil)
        }
        #expect(roll(inputs([3]), "median") == nil)
    }

    @Test func latestBreaksTiesByIDAndComparesWholeSeconds() {
        let t = ts("2024-03-10T12:00:00Z")
        let early = Timestamp(milliseconds: t.milliseconds + 900)
        let late = Timestamp(milliseconds: t.milliseconds + 100)
        // Same whole second: the higher id (later input) is latest even though its instant is earlier.
        #expect(roll(inputs([5, 1], times: [early, late]), "latest") == 1)
        #expect(roll(inputs([1, 5], times: [late, early]), "latest") == 5)
        // An undated result is the oldest (Ruby nil.to_i == 0), whatever its id.
        #expect(roll(inputs([4, 3], times: [nil, t]), "latest") == 3)
        #expect(roll(inputs([3, 4], times: [t, nil]), "latest") == 3)
        // ...but a pre-1970 result is older still.
        #expect(roll(inputs([3, 4], times: [ts("1969-12-31T23:59:59Z"), nil]), "latest") == 4)
    }

    @Test func latestTimeIsTheNewestResultsFirstByID() throws {
        let t = ts("2024-03-10T12:00:00Z")
        let a = Timestamp(milliseconds: t.milliseconds + 100)
        let b = Timestamp(milliseconds: t.milliseconds + 900)
        let score = try #require(RollupCalculator.rollup(inputs([1, 2, 3], times: [day(-1), a, b]),
                                                         method: .highest, calculationInt: nil,
                                                         scale: RollupScale(criterion: nil)))
        #expect(score.latestTime == a)
        #expect(score.count == 3)
    }

    @Test func effectiveScoreScalesPercentByPointsPossibleOrMasteryPoints() {
        let criterion = RubricCriterion(masteryPoints: 3, pointsPossible: 5)
        #expect(roll([RollupInput(score: 9, percent: 0.5)], "highest", criterion: criterion) == 2.5)
        #expect(roll([RollupInput(score: 9, percent: 0.0)], "highest", criterion: criterion) == 0, "0.0 is truthy in Ruby")
        #expect(roll([RollupInput(score: 9)], "highest", criterion: criterion) == 9, "no percent: the raw score")
        let zeroPossible = RubricCriterion(masteryPoints: 3, pointsPossible: 0)
        #expect(roll([RollupInput(score: 9, percent: 0.5)], "highest", criterion: zeroPossible) == 1.5)
        // A quiz result under highest is scaled on its own, not aggregated.
        #expect(roll([quiz(percent: 0.5, possible: 2, association: 1), quiz(percent: 1, possible: 2, association: 1)],
                     "highest", criterion: criterion) == 5)
    }

    @Test func aQuizResultWithNothingToAggregateIsDropped() {
        // possible is nil everywhere: Canvas would divide by a zero total; we drop the result.
        var bare = quiz(percent: 0.5, possible: 1, association: 1)
        bare.possible = nil
        let dated = RollupInput(score: 2, time: day(-1))
        #expect(roll([bare], "latest") == nil)
        #expect(roll([dated, bare], "latest") == 2)
        #expect(roll([dated, bare], "highest") == 2.5, "highest does not aggregate, so it scales percent")
    }

    @Test(arguments: [
        // (method, int, expected on [2, 3, 4] in time order)
        ("standard_decaying_average", 65 as Int?, 3.53),
        ("standard_decaying_average", 49, 3.53),      // below 50..99: the default 65
        ("standard_decaying_average", 50, 3.25),      // 2*.5+3*.5 = 2.5; 2.5*.5+4*.5
        ("standard_decaying_average", nil, 3.53),
        ("decaying_average", 100, 3.48),               // outside 1..99: 65
        ("decaying_average", 0, 3.48),
        ("decaying_average", 20, 2.8),                 // 4*.2 + 2.5*.8
        ("weighted_average", nil, 3.48),
        ("highest", 65, 4.0),                          // an int on highest is meaningless
    ])
    func calculationIntRangesAndDefaults(method: String, int: Int?, expected: Double) {
        #expect(roll(inputs([2, 3, 4], times: [day(0), day(1), day(2)]), method, int: int) == expected)
    }

    @Test func nMasteryIntDefaultsToFiveWhenMissingOrOutOfRange() {
        let fiveMastered = inputs([3, 4, 5, 3, 4])
        let fourMastered = inputs([3, 4, 5, 3])
        for int in [nil, 0, 11] as [Int?] {
            #expect(roll(fiveMastered, "n_mastery", int: int) == 3.8)
            #expect(roll(fourMastered, "n_mastery", int: int) == nil)
        }
        #expect(roll(fourMastered, "n_mastery", int: 10) == nil)
        #expect(roll(fourMastered, "n_mastery", int: 4) == 3.75)
        #expect(CalculationMethod.nMastery.effectiveCalculationInt(nil) == 5)
        #expect(CalculationMethod.highest.effectiveCalculationInt(65) == nil)
    }

    @Test func methodNames() {
        #expect(CalculationMethod(nil) == .highest)
        #expect(CalculationMethod("standard_decaying_average").formula(newDecayingAverage: true) == .standardDecayingAverage)
        #expect(CalculationMethod("standard_decaying_average").formula(newDecayingAverage: false) == .legacyWeightedAverage)
        #expect(CalculationMethod("decaying_average").formula(newDecayingAverage: true) == .legacyWeightedAverage)
        #expect(CalculationMethod("nonsense") == .unknown("nonsense"))
        #expect(CalculationMethod("nonsense").formula(newDecayingAverage: true) == nil)
    }

    @Test func largeResultSetsSortStably() {
        // More than the insertion-sort threshold: 40 results, all at one time but the last.
        var scores = Array(repeating: 1.0, count: 39) + [5.0]
        let times: [Timestamp?] = Array(repeating: day(1), count: 39) + [day(0)]
        #expect(roll(inputs(scores, times: times), "latest") == 1)
        scores[38] = 2
        #expect(roll(inputs(scores, times: times), "latest") == 2, "the highest id among equal times")

        // Any id order gives the result of the same inputs presented already in stable time order.
        var rng = SeededGenerator(seed: 5)
        for count in [5, 33, 80] {
            let shuffled = (0..<count).map { _ in
                RollupInput(score: Double(Int.random(in: 0...40, using: &rng)) / 8, time: day(Int.random(in: 0..<6, using: &rng)))
            }
            let chronological = shuffled.enumerated().sorted {
                $0.element.orderSeconds != $1.element.orderSeconds
                    ? $0.element.orderSeconds < $1.element.orderSeconds : $0.offset < $1.offset
            }.map(\.element)
            for method in ["standard_decaying_average", "decaying_average", "latest"] {
                #expect(roll(shuffled, method, int: 65) == roll(chronological, method, int: 65), "\(method) \(count)")
            }
        }
    }
}
