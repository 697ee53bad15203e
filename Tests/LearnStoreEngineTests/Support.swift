import LearnStoreModel
@testable import LearnStoreEngine

let tenantA = "tenant_a"
let everything: Scopes = [.recordsRead, .recordsWrite, .admin, .outcomesRead, .outcomesWrite]

func caller(_ tenant: String = tenantA, app: String? = nil, person: UUID16 = UUID16(high: 1, low: 1), scopes: Scopes = everything) -> CallerIdentity {
    CallerIdentity(tenantID: tenant, appID: app, personID: person, scopes: scopes)
}

func person(_ n: UInt64) -> UUID16 { UUID16(high: 0x5f0c_1e2a_7b3d_4c9e, low: 0x9a1b_0000_0000_0000 | n) }

func body(person p: UUID16 = person(1), title: String = "AWS Certified", provider: String? = "AWS", score: Double? = 90,
          passed: Bool? = true, cert: String? = nil, cohort: UUID16? = nil, assessment: UUID16? = nil,
          completed: Timestamp? = Timestamp(milliseconds: 1_700_000_000_000), expires: Timestamp? = nil) -> RecordBody {
    RecordBody(personID: p, title: title, provider: provider, completedAt: completed, expiresAt: expires, score: score,
               passed: passed, certificationRef: cert, linkedCohortID: cohort, linkedAssessmentID: assessment)
}

/// A tenant state plus a clock that advances 1 ms per write, for deterministic tests.
struct Harness {
    var state = TenantState(tenantID: tenantA)
    var now = Timestamp(milliseconds: 1_704_067_200_000)
    let who = caller()

    mutating func tick() -> Timestamp {
        now.milliseconds += 1
        return now
    }

    @discardableResult
    mutating func create(_ b: RecordBody = body(), as c: CallerIdentity? = nil, key: String? = nil) throws(LearnStoreError) -> LearningRecord {
        let t = tick()
        return try state.create(b, caller: c ?? who, idempotencyKey: key, now: t).result
    }

    mutating func ids(_ query: ListQuery, as c: CallerIdentity? = nil) throws(LearnStoreError) -> [RecordID] {
        try state.listRecords(query, caller: c ?? who).records.map(\.id)
    }

    /// All pages of a query.
    mutating func allPages(_ query: ListQuery, as c: CallerIdentity? = nil) throws(LearnStoreError) -> [RecordID] {
        var q = query
        var out: [RecordID] = []
        while true {
            let page = try state.listRecords(q, caller: c ?? who)
            out += page.records.map(\.id)
            guard let next = page.next else { return out }
            q.cursor = next
        }
    }
}
