import CanvasOutcomes
import LearnStoreModel

/// Outcome reads on the tenant's executor (the write, `ingestOutcomes`, is with the other writes).
extension TenantActor {
    public func outcomeEntity(_ kind: OutcomeEntityKind, key: String, caller: CallerIdentity) throws(LearnStoreError) -> OutcomeEntity {
        try checkReadable()
        return try state.outcomeEntity(kind, key: key, caller: caller)
    }

    public func outcomeTree(_ query: OutcomeTreeQuery, caller: CallerIdentity) throws(LearnStoreError) -> [OutcomeEntity] {
        try checkReadable()
        return try state.outcomeTree(query, caller: caller)
    }

    public func outcomeResults(_ scope: ResultScope, after cursor: ResultCursor?, limit: Int = TenantState.defaultOutcomePage,
                               caller: CallerIdentity) throws(LearnStoreError) -> ResultPage {
        try checkReadable()
        return try state.outcomeResults(scope, after: cursor, limit: limit, caller: caller)
    }

    public func proficiency(inForce context: ContextRef, caller: CallerIdentity) throws(LearnStoreError) -> OutcomeProficiency? {
        try checkReadable()
        return try state.proficiency(inForce: context, caller: caller)
    }

    public func studentRollup(userUUID: String, outcomeID: String, context: ContextRef, options: RollupOptions = RollupOptions(),
                              caller: CallerIdentity) throws(LearnStoreError) -> StudentOutcomeRollup? {
        try checkReadable()
        return try state.studentRollup(userUUID: userUUID, outcomeID: outcomeID, context: context, options: options, caller: caller)
    }

    public func studentRollups(userUUID: String, context: ContextRef, options: RollupOptions = RollupOptions(),
                               caller: CallerIdentity) throws(LearnStoreError) -> [StudentOutcomeRollup] {
        try checkReadable()
        return try state.studentRollups(userUUID: userUUID, context: context, options: options, caller: caller)
    }

    public func contextAggregates(context: ContextRef, options: RollupOptions = RollupOptions(),
                                  caller: CallerIdentity) throws(LearnStoreError) -> [ContextOutcomeAggregate] {
        try checkReadable()
        return try state.contextAggregates(context: context, options: options, caller: caller)
    }
}
