import LearnStoreModel

/// Any one of the five entities, as carried by an event.
public enum OutcomeEntity: Hashable, Sendable {
    case outcome(LearningOutcome)
    case group(OutcomeGroup)
    case link(OutcomeLink)
    case result(OutcomeResult)
    case proficiency(OutcomeProficiency)

    public var kind: OutcomeEntityKind {
        switch self {
        case .outcome: .outcome
        case .group: .group
        case .link: .link
        case .result: .result
        case .proficiency: .proficiency
        }
    }

    /// The table key (a result's may be synthetic, see ``OutcomeResult/key``).
    public var key: String {
        switch self {
        case .outcome(let e): e.key
        case .group(let e): e.key
        case .link(let e): e.key
        case .result(let e): e.key
        case .proficiency(let e): e.key
        }
    }

    public var workflowState: String? {
        switch self {
        case .outcome(let e): e.workflowState
        case .group(let e): e.workflowState
        case .link(let e): e.workflowState
        case .result(let e): e.workflowState
        case .proficiency(let e): e.workflowState
        }
    }

    public var isDeleted: Bool { workflowState == "deleted" }

    /// The version the store orders this snapshot by.
    public var version: EntityVersion {
        switch self {
        case .outcome(let e): e.version
        case .group(let e): e.version
        case .link(let e): e.version
        case .result(let e): e.version
        case .proficiency(let e): e.version
        }
    }

    public var json: JSONValue {
        switch self {
        case .outcome(let e): e.json
        case .group(let e): e.json
        case .link(let e): e.json
        case .result(let e): e.json
        case .proficiency(let e): e.json
        }
    }
}
