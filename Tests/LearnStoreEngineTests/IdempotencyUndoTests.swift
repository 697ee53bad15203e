import LearnStoreModel
import Testing
@testable import LearnStoreEngine

/// A write that is taken back (refused by the write gate, or failed in the log) leaves the key table
/// as it was: a new key that pushed the oldest out of a full table gives it back, in its place.
/// (Found by the move simulation, seed 602396: a refused create dropped a key for good.)
@Suite struct IdempotencyUndoTests {
    static func keys(_ state: TenantState) -> [String] { state.idempotency.entriesInOrder.map(\.key) }

    @Test(arguments: [1, 2, 3, 5])
    func aCreateWithAKeyTakenBackLeavesTheTableAsItWas(capacity: Int) throws {
        var h = Harness()
        h.state = TenantState(tenantID: tenantA, limits: EngineLimits(idempotencyKeys: capacity))
        for n in 0..<(capacity + 2) { try h.create(body(title: "k\(n)"), key: "k\(n)") }
        let before = Self.keys(h.state)
        #expect(before.count == capacity)
        let write = try h.state.create(body(title: "new"), caller: h.who, idempotencyKey: "new", now: h.tick())
        #expect(Self.keys(h.state).last == "\u{0}new" && Self.keys(h.state).count == capacity)
        h.state.undo(try #require(write.undo))
        #expect(Self.keys(h.state) == before)
        // And the table goes on as if the write never was: the next key pushes out the same one.
        var again = h.state
        try h.create(body(title: "next"), key: "next")
        _ = try again.create(body(title: "next"), caller: h.who, idempotencyKey: "next", now: h.tick())
        #expect(Self.keys(h.state) == Self.keys(again) && Self.keys(h.state).first == before.dropFirst().first ?? "\u{0}next")
    }
}
