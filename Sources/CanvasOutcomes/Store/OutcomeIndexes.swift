/// Everything derived from the tables to answer queries without scanning: rebuilt from the tables on
/// load, maintained incrementally on every apply. Plain dictionaries, not persistent: snapshots copy
/// ``OutcomeTables`` only, so these are never shared and never pay a copy-on-write.
struct OutcomeIndexes: Sendable {
    var outcomesByContext: [ContextRef: Set<String>] = [:]
    var groupsByContext: [ContextRef: Set<String>] = [:]
    var childGroupsByParent: [String: Set<String>] = [:]
    var linksByGroup: [String: Set<String>] = [:]
    var linksByOutcome: [String: Set<String>] = [:]
    var linksByContext: [ContextRef: Set<String>] = [:]
    var proficienciesByContext: [ContextRef: Set<String>] = [:]
    var resultsByStudent: [String: SortedKeyList<ResultOrderKey>] = [:]
    var resultsByOutcome: [String: SortedKeyList<ResultOrderKey>] = [:]
    var resultsByContext: [ContextRef: SortedKeyList<ResultOrderKey>] = [:]
    var resultsByAsset: [AssetRef: SortedKeyList<ResultOrderKey>] = [:]
    var resultsByTime = SortedKeyList<ResultOrderKey>()
    var rollups = RollupIndex()
}

extension Dictionary where Value == Set<String> {
    mutating func add(_ member: String, to key: Key?) {
        guard let key else { return }
        self[key, default: []].insert(member)
    }

    mutating func remove(_ member: String, from key: Key?) {
        guard let key, var members = self[key] else { return }
        members.remove(member)
        self[key] = members.isEmpty ? nil : members
    }
}

extension Dictionary where Value == SortedKeyList<ResultOrderKey> {
    mutating func add(_ member: ResultOrderKey, to key: Key?) {
        guard let key else { return }
        self[key, default: SortedKeyList()].insert(member)
    }

    mutating func remove(_ member: ResultOrderKey, from key: Key?) {
        guard let key, self[key] != nil else { return }
        self[key]!.remove(member)
        if self[key]!.isEmpty { self[key] = nil }
    }
}

extension LearningOutcome {
    func addToIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.outcomesByContext.add(id, to: context)
        indexes.rollups.setOutcome(self)
    }

    func removeFromIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.outcomesByContext.remove(id, from: context)
        indexes.rollups.removeOutcome(id: id)
    }
}

extension OutcomeGroup {
    func addToIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.groupsByContext.add(id, to: context)
        indexes.childGroupsByParent.add(id, to: parentOutcomeGroupID)
    }

    func removeFromIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.groupsByContext.remove(id, from: context)
        indexes.childGroupsByParent.remove(id, from: parentOutcomeGroupID)
    }
}

extension OutcomeLink {
    func addToIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.linksByGroup.add(id, to: learningOutcomeGroupID)
        indexes.linksByOutcome.add(id, to: learningOutcomeID)
        indexes.linksByContext.add(id, to: context)
    }

    func removeFromIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.linksByGroup.remove(id, from: learningOutcomeGroupID)
        indexes.linksByOutcome.remove(id, from: learningOutcomeID)
        indexes.linksByContext.remove(id, from: context)
    }
}

extension OutcomeProficiency {
    func addToIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.proficienciesByContext.add(id, to: context)
    }

    func removeFromIndexes(_ indexes: inout OutcomeIndexes) {
        indexes.proficienciesByContext.remove(id, from: context)
    }
}

extension OutcomeResult {
    func addToIndexes(_ indexes: inout OutcomeIndexes) {
        let position = ResultOrderKey(self)
        indexes.resultsByStudent.add(position, to: userUUID)
        indexes.resultsByOutcome.add(position, to: learningOutcomeID)
        indexes.resultsByContext.add(position, to: resultContext)
        indexes.resultsByAsset.add(position, to: associatedAsset)
        if assessedAt != nil { indexes.resultsByTime.insert(position) }
        indexes.rollups.add(self)
    }

    func removeFromIndexes(_ indexes: inout OutcomeIndexes) {
        let position = ResultOrderKey(self)
        indexes.resultsByStudent.remove(position, from: userUUID)
        indexes.resultsByOutcome.remove(position, from: learningOutcomeID)
        indexes.resultsByContext.remove(position, from: resultContext)
        indexes.resultsByAsset.remove(position, from: associatedAsset)
        if assessedAt != nil { indexes.resultsByTime.remove(position) }
        indexes.rollups.remove(self)
    }
}
