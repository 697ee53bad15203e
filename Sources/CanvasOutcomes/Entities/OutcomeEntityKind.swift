/// The five entity types. The raw value is the tag byte in ``OutcomeRecord`` and ``OutcomeTombstone``
/// encodings: never renumber.
public enum OutcomeEntityKind: UInt8, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case outcome = 1
    case group = 2
    case link = 3
    case result = 4
    case proficiency = 5

    public var description: String {
        switch self {
        case .outcome: "learning_outcome"
        case .group: "learning_outcome_group"
        case .link: "learning_outcome_link"
        case .result: "learning_outcome_result"
        case .proficiency: "outcome_proficiency"
        }
    }
}
