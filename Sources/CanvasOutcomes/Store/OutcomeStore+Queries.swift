import HashTreeCollections

/// Entity lookups and the outcome-tree queries, each served by an index.
extension OutcomeStore {
    public func outcome(id: String) -> LearningOutcome? { tables.outcomes[id] }
    public func group(id: String) -> OutcomeGroup? { tables.groups[id] }
    public func link(id: String) -> OutcomeLink? { tables.links[id] }
    public func proficiency(id: String) -> OutcomeProficiency? { tables.proficiencies[id] }
    /// By ``OutcomeResult/key`` (the id, or the synthetic key of an id-less result).
    public func result(key: String) -> OutcomeResult? { tables.results[key] }
    public func tombstone(kind: OutcomeEntityKind, key: String) -> OutcomeTombstone? {
        tables.tombstones[TombstoneKey(kind: kind, key: key)]
    }

    /// Outcomes whose own `context_type`/`context_id` is `context`, by id.
    public func outcomes(in context: ContextRef) -> [LearningOutcome] {
        Self.sortedByID(indexes.outcomesByContext[context], tables.outcomes) { $0.id }
    }

    /// Groups of a context, by id.
    public func groups(in context: ContextRef) -> [OutcomeGroup] {
        Self.sortedByID(indexes.groupsByContext[context], tables.groups) { $0.id }
    }

    /// The groups whose parent is `groupID`, by id.
    public func childGroups(of groupID: String) -> [OutcomeGroup] {
        Self.sortedByID(indexes.childGroupsByParent[groupID], tables.groups) { $0.id }
    }

    /// The links placed in group `groupID`, by id.
    public func links(inGroup groupID: String) -> [OutcomeLink] {
        Self.sortedByID(indexes.linksByGroup[groupID], tables.links) { $0.id }
    }

    /// Every link of outcome `outcomeID`, by id.
    public func links(forOutcome outcomeID: String) -> [OutcomeLink] {
        Self.sortedByID(indexes.linksByOutcome[outcomeID], tables.links) { $0.id }
    }

    /// The links of a context, by id.
    public func links(in context: ContextRef) -> [OutcomeLink] {
        Self.sortedByID(indexes.linksByContext[context], tables.links) { $0.id }
    }

    /// A group's child groups and links together.
    public func children(of groupID: String) -> (groups: [OutcomeGroup], links: [OutcomeLink]) {
        (childGroups(of: groupID), links(inGroup: groupID))
    }

    /// The group, its parent, and so on up to the root (or to the first parent the store does not hold).
    /// Stops before revisiting a group, so a cycle in (possibly out-of-order) data cannot loop.
    public func groupPath(toRootFrom groupID: String) -> [OutcomeGroup] {
        var path: [OutcomeGroup] = []
        var seen: Set<String> = []
        var next: String? = groupID
        while let id = next, seen.insert(id).inserted, let group = tables.groups[id] {
            path.append(group)
            next = group.parentOutcomeGroupID
        }
        return path
    }

    /// The proficiency in force for `context`: its own live (not deleted) proficiency; with several,
    /// the newest version. nil when the context has none: Canvas would resolve up the account chain,
    /// which events do not describe, and rollups then use each outcome's own criterion.
    public func proficiency(inForce context: ContextRef) -> OutcomeProficiency? {
        guard let ids = indexes.proficienciesByContext[context] else { return nil }
        var best: OutcomeProficiency?
        for id in ids {
            guard let candidate = tables.proficiencies[id], candidate.workflowState != "deleted" else { continue }
            if let current = best {
                let newer = candidate.stamp != current.stamp
                    ? candidate.stamp > current.stamp : CanvasID.precedes(current.id, candidate.id)
                if !newer { continue }
            }
            best = candidate
        }
        return best
    }

    private static func sortedByID<E>(_ ids: Set<String>?, _ table: TreeDictionary<String, E>,
                                      _ id: (E) -> String) -> [E] {
        guard let ids else { return [] }
        return ids.compactMap { table[$0] }.sorted { CanvasID.precedes(id($0), id($1)) }
    }
}
