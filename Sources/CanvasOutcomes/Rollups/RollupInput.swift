import LearnStoreModel

/// One scored result as the calculator sees it: numbers only, no strings, so a rollup never hashes.
/// Inputs are passed in result-id order, the order Canvas's SQL feeds `RollupScore`.
public struct RollupInput: Hashable, Sendable {
    /// The raw `score` (results without one never reach the calculator).
    public var score: Double
    public var percent: Double?
    public var possible: Double?
    /// `(submitted_at ?? assessed_at)` in whole epoch seconds, floor; 0 when both are absent (Ruby
    /// `nil.to_i`), so an undated result is the oldest.
    public var orderSeconds: Int64
    /// The time reported as the rollup's latest assessment.
    public var time: Timestamp?
    /// Results with equal keys belong to the same quiz (Canvas matches association type and id; we match
    /// the associated asset). Any value; -1 conventionally means "none", and nones match each other as
    /// nil matches nil in Ruby.
    public var association: Int32
    public var isClassicQuiz: Bool

    public init(score: Double, percent: Double? = nil, possible: Double? = nil, time: Timestamp? = nil,
                association: Int32 = -1, isClassicQuiz: Bool = false) {
        self.score = score
        self.percent = percent
        self.possible = possible
        self.time = time
        self.orderSeconds = RollupInput.wholeSeconds(time)
        self.association = association
        self.isClassicQuiz = isClassicQuiz
    }

    /// Ruby `Time#to_i` (floor) of the time, or 0 for nil.
    static func wholeSeconds(_ time: Timestamp?) -> Int64 {
        guard let ms = time?.milliseconds else { return 0 }
        // Floor division written so that no Int64, Int64.min included, overflows.
        return ms >= 0 ? ms / 1000 : (ms + 1) / 1000 - 1
    }
}

/// A calculated rollup: the rounded score, how many scored results went in, and the latest one's time.
public struct RollupScore: Hashable, Sendable {
    public var score: Double
    public var count: Int
    public var latestTime: Timestamp?

    public init(score: Double, count: Int, latestTime: Timestamp?) {
        self.score = score
        self.count = count
        self.latestTime = latestTime
    }
}
