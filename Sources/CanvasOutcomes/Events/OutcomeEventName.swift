/// The ten Canvas live events this module ingests. Deletes are soft: they arrive as `_updated` with
/// `workflow_state: "deleted"`; there is no `_deleted` event.
public enum OutcomeEventName: String, CaseIterable, Sendable {
    case learningOutcomeCreated = "learning_outcome_created"
    case learningOutcomeUpdated = "learning_outcome_updated"
    case learningOutcomeGroupCreated = "learning_outcome_group_created"
    case learningOutcomeGroupUpdated = "learning_outcome_group_updated"
    case learningOutcomeLinkCreated = "learning_outcome_link_created"
    case learningOutcomeLinkUpdated = "learning_outcome_link_updated"
    case learningOutcomeResultCreated = "learning_outcome_result_created"
    case learningOutcomeResultUpdated = "learning_outcome_result_updated"
    case outcomeProficiencyCreated = "outcome_proficiency_created"
    case outcomeProficiencyUpdated = "outcome_proficiency_updated"

    public var kind: OutcomeEntityKind {
        switch self {
        case .learningOutcomeCreated, .learningOutcomeUpdated: .outcome
        case .learningOutcomeGroupCreated, .learningOutcomeGroupUpdated: .group
        case .learningOutcomeLinkCreated, .learningOutcomeLinkUpdated: .link
        case .learningOutcomeResultCreated, .learningOutcomeResultUpdated: .result
        case .outcomeProficiencyCreated, .outcomeProficiencyUpdated: .proficiency
        }
    }

    public var isCreated: Bool {
        switch self {
        case .learningOutcomeCreated, .learningOutcomeGroupCreated, .learningOutcomeLinkCreated,
             .learningOutcomeResultCreated, .outcomeProficiencyCreated: true
        default: false
        }
    }
}
