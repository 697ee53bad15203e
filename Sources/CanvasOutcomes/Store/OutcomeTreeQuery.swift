/// A query over outcomes, groups and links, each answered from one index (by id order, or root-ward
/// for a path). The wire protocol carries these as they are.
public enum OutcomeTreeQuery: Hashable, Sendable {
    /// Outcomes whose own context is this one.
    case contextOutcomes(ContextRef)
    /// Groups of a context.
    case contextGroups(ContextRef)
    /// Links of a context.
    case contextLinks(ContextRef)
    /// Links placed in a group.
    case groupLinks(groupID: String)
    /// Every link of an outcome.
    case outcomeLinks(outcomeID: String)
    /// A group's child groups (by id), then its links (by id).
    case groupChildren(groupID: String)
    /// The group, its parent, and so on up to the root (see ``OutcomeStore/groupPath(toRootFrom:)``).
    case groupPath(groupID: String)
}

extension OutcomeStore {
    /// The entities a tree query selects, in the order stated on each case.
    public func entities(_ query: OutcomeTreeQuery) -> [OutcomeEntity] {
        switch query {
        case .contextOutcomes(let context): outcomes(in: context).map(OutcomeEntity.outcome)
        case .contextGroups(let context): groups(in: context).map(OutcomeEntity.group)
        case .contextLinks(let context): links(in: context).map(OutcomeEntity.link)
        case .groupLinks(let id): links(inGroup: id).map(OutcomeEntity.link)
        case .outcomeLinks(let id): links(forOutcome: id).map(OutcomeEntity.link)
        case .groupChildren(let id):
            childGroups(of: id).map(OutcomeEntity.group) + links(inGroup: id).map(OutcomeEntity.link)
        case .groupPath(let id): groupPath(toRootFrom: id).map(OutcomeEntity.group)
        }
    }

    /// Live entity by kind and key (a result's key may be synthetic); nil when absent or deleted.
    public func entity(_ kind: OutcomeEntityKind, key: String) -> OutcomeEntity? {
        guard case .entity(let entity)? = record(kind: kind, key: key) else { return nil }
        return entity
    }

    /// Live outcomes, groups, links and proficiencies (results and tombstones not counted).
    public var entityCount: Int {
        tables.outcomes.count + tables.groups.count + tables.links.count + tables.proficiencies.count
    }

    /// Live results.
    public var resultCount: Int { tables.results.count }
}
