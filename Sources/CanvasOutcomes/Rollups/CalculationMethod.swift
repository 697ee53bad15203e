/// An outcome's `calculation_method`, as stored by Canvas, and the `calculation_int` rules of
/// `OutcomeCalculationMethod::VALID_CALCULATION_INTS`.
public enum CalculationMethod: Hashable, Sendable, CustomStringConvertible {
    case highest
    case latest
    case average
    case nMastery
    /// Always the legacy weighted formula, whatever the feature flag (Canvas maps it to `weighted_average`).
    case decayingAverage
    case weightedAverage
    /// The iterative decaying average when `outcomes_new_decaying_average_calculation` is on, else legacy.
    case standardDecayingAverage
    /// A method this version does not know: such an outcome gets no rollup, as in Canvas, whose
    /// `calculate_results` falls through its `case` and yields nil.
    case unknown(String)

    /// nil is `highest`: legacy outcomes predate calculation methods and Canvas rolls them up as highest.
    public init(_ raw: String?) {
        switch raw {
        case nil, "highest": self = .highest
        case "latest": self = .latest
        case "average": self = .average
        case "n_mastery": self = .nMastery
        case "decaying_average": self = .decayingAverage
        case "weighted_average": self = .weightedAverage
        case "standard_decaying_average": self = .standardDecayingAverage
        case let other?: self = .unknown(other)
        }
    }

    public var rawValue: String {
        switch self {
        case .highest: "highest"
        case .latest: "latest"
        case .average: "average"
        case .nMastery: "n_mastery"
        case .decayingAverage: "decaying_average"
        case .weightedAverage: "weighted_average"
        case .standardDecayingAverage: "standard_decaying_average"
        case .unknown(let raw): raw
        }
    }

    public var description: String { rawValue }

    /// Every method this version computes.
    public static let known: [CalculationMethod] = [
        .highest, .latest, .average, .nMastery, .decayingAverage, .weightedAverage, .standardDecayingAverage,
    ]

    /// Canvas's allowed range for the method's int, or nil when the method takes none.
    public var validCalculationInts: ClosedRange<Int>? {
        switch self {
        case .decayingAverage, .weightedAverage: 1...99
        case .standardDecayingAverage: 50...99
        case .nMastery: 1...10
        case .highest, .latest, .average, .unknown: nil
        }
    }

    /// The default Canvas assigns when the method is set without an int.
    public var defaultCalculationInt: Int? {
        switch self {
        case .decayingAverage, .weightedAverage, .standardDecayingAverage: 65
        case .nMastery: 5
        case .highest, .latest, .average, .unknown: nil
        }
    }

    /// The int a rollup uses. Canvas validates ints on save and never at calculation time, so an event
    /// with a nil or out-of-range int (n_mastery with nil would raise in Ruby) gets the method's default
    /// rather than a nonsensical weight; methods without an int ignore it (Canvas's documented
    /// example event sends `highest` with 65).
    public func effectiveCalculationInt(_ int: Int?) -> Int? {
        guard let range = validCalculationInts else { return nil }
        if let int, range.contains(int) { return int }
        return defaultCalculationInt
    }

    /// The formula Canvas's `RollupScore#adjust_calculation_method` picks for this stored method.
    public func formula(newDecayingAverage: Bool) -> RollupFormula? {
        switch self {
        case .highest: .highest
        case .latest: .latest
        case .average: .average
        case .nMastery: .nMastery
        case .decayingAverage, .weightedAverage: .legacyWeightedAverage
        case .standardDecayingAverage: newDecayingAverage ? .standardDecayingAverage : .legacyWeightedAverage
        case .unknown: nil
        }
    }

    /// Methods under which a classic-quiz result is replaced by its quiz's points-weighted percent
    /// (`RollupScoreAggregatorHelper#scaled_score_from_result`).
    var aggregatesClassicQuizzes: Bool {
        switch self {
        case .decayingAverage, .weightedAverage, .standardDecayingAverage, .latest, .average: true
        case .highest, .nMastery, .unknown: false
        }
    }
}

/// The arithmetic a rollup runs (docs/ROLLUPS.md, "Methods").
public enum RollupFormula: Hashable, Sendable {
    case highest
    case latest
    case average
    case nMastery
    /// `s_k * w + mean(s_1..s_{k-1}) * (1 - w)`.
    case legacyWeightedAverage
    /// `a = a * (1 - d) + s_j * d`, seeded with `s_1`.
    case standardDecayingAverage
}
