/// The choices Canvas makes from account settings that live events do not carry.
public struct RollupOptions: Hashable, Sendable {
    /// Which scale gives `P`, `M` and the ratings.
    public enum Scale: Hashable, Sendable {
        /// Each outcome's own `rubric_criterion` (Canvas with `account_level_mastery_scales` off).
        case outcomeCriterion
        /// The proficiency in force for a context (Canvas with `account_level_mastery_scales` on), or each
        /// outcome's criterion when that context has none. nil means the rollup's own context; pass the
        /// account when the engine knows the course's account.
        case proficiency(of: ContextRef?)
    }

    /// A course- or account-level calculation method (Canvas's OutcomeCalculationMethod). Its events are
    /// not among the ten we ingest, so the caller supplies it when it knows one.
    public struct CalculationOverride: Hashable, Sendable {
        public var method: CalculationMethod
        public var calculationInt: Int?

        public init(method: CalculationMethod, calculationInt: Int? = nil) {
            self.method = method
            self.calculationInt = calculationInt
        }
    }

    public var scale: Scale
    /// Canvas's `outcomes_new_decaying_average_calculation` feature flag.
    public var newDecayingAverage: Bool
    public var calculationOverride: CalculationOverride?

    /// Defaults: the context's proficiency when it has one, the new decaying average, the outcome's method.
    public init(scale: Scale = .proficiency(of: nil), newDecayingAverage: Bool = true,
                calculationOverride: CalculationOverride? = nil) {
        self.scale = scale
        self.newDecayingAverage = newDecayingAverage
        self.calculationOverride = calculationOverride
    }
}
