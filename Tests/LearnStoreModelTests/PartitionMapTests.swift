import LearnStoreModel
import Testing

/// The partition map is read from etcd and from TOPOLOGY answers, and clients in other languages
/// compute the same partitions: the hash is pinned by vectors, and every malformed map is refused.
@Suite struct PartitionMapTests {
    /// FNV-1a 64 of the id's UTF-8 bytes (the vectors docs/PROTOCOL.md gives).
    @Test func theHashIsFNV1a64OfTheUTF8Bytes() {
        #expect(PartitionMap.hash("") == 14_695_981_039_346_656_037)
        #expect(PartitionMap.hash("tenant-a") == 14_046_587_775_414_411_003)
        #expect(PartitionMap.hash("tenant-b") == 14_046_588_874_926_039_214)
        #expect(PartitionMap.hash("acme") == 514_768_821_131_075_087)
    }

    @Test func aTenantsPartitionIsItsOverrideElseItsHashModuloThePartitions() throws {
        let map = try PartitionMap(partitions: 256, groups: ["g0", "g1", "g2"], overrides: ["acme": 3])
        #expect(map.partition(of: "tenant-a") == 251)
        #expect(map.partition(of: "tenant-b") == 174)
        #expect(map.partition(of: "acme") == 3)
        #expect(map.group(of: "tenant-a") == "g2", "251 mod 3")
        #expect(map.group(of: "tenant-b") == "g0", "174 mod 3")
        #expect(map.group(of: "acme") == "g0", "3 mod 3")
        #expect(map.assignment.count == 256 && map.assignment[0..<4] == [0, 1, 2, 0])
    }

    @Test func aMapReadsBackAsWritten() throws {
        let map = try PartitionMap(partitions: 8, groups: ["a", "b"], assignment: [1, 1, 0, 0, 1, 0, 1, 0], overrides: ["big.tenant": 5])
        #expect(try PartitionMap.decode(map.encoded) == map)
        #expect(try PartitionMap.decode(map.json) == map)
        // A move written without "fenced" is fenced: its group takes none of its writes.
        let older = #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"0":{"to":"b","id":2}}}"#
        #expect(try PartitionMap.decode(Array(older.utf8)).moves == [0: PartitionMove(to: 1, id: 2, fenced: true)])
    }

    @Test(arguments: [
        #"{"partitions":2,"hash":"md5","groups":["a"],"assignment":[0,0]}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a"],"assignment":[0]}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a"],"assignment":[0,1]}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a"],"assignment":[0,-1]}"#,
        #"{"partitions":0,"hash":"fnv1a64","groups":["a"],"assignment":[]}"#,
        #"{"partitions":5000,"hash":"fnv1a64","groups":["a"],"assignment":[0]}"#,
        #"{"partitions":99999999999999999999,"hash":"fnv1a64","groups":["a"],"assignment":[0]}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":["a","a"],"assignment":[0]}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":["a b"],"assignment":[0]}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":[],"assignment":[0]}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":["a"],"assignment":[0],"overrides":{"t":1}}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":["a"],"assignment":[0],"overrides":{"no spaces":0}}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":["a"],"assignment":[0],"overrides":[]}"#,
        #"{"partitions":1,"hash":"fnv1a64","groups":"a","assignment":[0]}"#,
        #"[1,2,3]"#,
        #"not json"#,
    ])
    func aMalformedMapIsRefusedWithATypedError(_ text: String) {
        let error = #expect(throws: LearnStoreError.self) { try PartitionMap.decode(Array(text.utf8)) }
        #expect(error?.code == .protocolViolation)
    }

    @Test func anOversizedMapIsRefusedBeforeItIsParsed() {
        let huge = Array(#"{"partitions":1,"hash":"fnv1a64","groups":["a"],"assignment":[0],"overrides":{"#.utf8)
            + Array(repeating: UInt8(ascii: " "), count: 1 << 20) + Array("}}".utf8)
        #expect(throws: LearnStoreError.self) { try PartitionMap.decode(huge) }
    }

    @Test func aMoveChangesTheMapOneVersionAtATime() throws {
        let map = try PartitionMap(partitions: 4, groups: ["a", "b"])
        #expect(map.version == 1 && map.moves.isEmpty && map.holder(of: 1) == "b")
        let grown = try map.addingGroup("c")
        #expect(grown.version == 2 && grown.groups == ["a", "b", "c"] && grown.assignment == map.assignment)
        let started = try grown.startingMove(of: 1, to: "c")
        #expect(started.version == 3 && started.moves == [1: PartitionMove(to: 2, id: 3, fenced: false)] && started.holder(of: 1) == "b")
        #expect(try PartitionMap.decode(started.encoded) == started)
        let fenced = try started.fencingMove(of: 1, id: 3)
        #expect(fenced.version == 4 && fenced.moves == [1: PartitionMove(to: 2, id: 3, fenced: true)] && fenced.holder(of: 1) == "b")
        #expect(try PartitionMap.decode(fenced.encoded) == fenced)
        #expect(try fenced.fencingMove(of: 1, id: 3) == fenced, "fencing a fenced move changes nothing")
        let unfenced = try fenced.unfencingMove(of: 1, id: 3)
        #expect(unfenced.version == 5 && unfenced.moves == [1: PartitionMove(to: 2, id: 3, fenced: false)] && unfenced.canFollow(fenced))
        #expect(try started.unfencingMove(of: 1, id: 3) == started, "unfencing a move not fenced changes nothing")
        let done = try fenced.completingMove(of: 1, id: 3)
        #expect(done.version == 5 && done.moves.isEmpty && done.holder(of: 1) == "c")
        let calledOff = try started.cancellingMove(of: 1)
        #expect(calledOff.version == 4 && calledOff.moves.isEmpty && calledOff.holder(of: 1) == "b")
        #expect(try fenced.cancellingMove(of: 1).holder(of: 1) == "b", "a fenced move can be called off too")
        for later in [grown, started, fenced, done, calledOff] { #expect(later.canFollow(map)) }
        #expect(done.canFollow(started) && !started.canFollow(done), "never back to a lower version")

        func code(_ body: () throws -> PartitionMap) -> LearnStoreError.Code? {
            do { _ = try body(); return nil } catch { return (error as? LearnStoreError)?.code }
        }
        #expect(code { try grown.addingGroup("a") } == .conflict)
        #expect(code { try started.startingMove(of: 1, to: "a") } == .conflict, "one move of a partition at a time")
        #expect(code { try grown.startingMove(of: 1, to: "b") } == .conflict, "already there")
        #expect(code { try grown.startingMove(of: 1, to: "z") } == .validation)
        #expect(code { try grown.startingMove(of: 4, to: "c") } == .validation)
        #expect(code { try fenced.completingMove(of: 1, id: 2) } == .conflict, "another move's id")
        #expect(code { try started.completingMove(of: 1, id: 3) } == .conflict, "a move completes only once fenced")
        #expect(code { try started.fencingMove(of: 1, id: 2) } == .conflict, "another move's id")
        #expect(code { try fenced.unfencingMove(of: 1, id: 2) } == .conflict, "another move's id")
        #expect(code { try grown.cancellingMove(of: 1) } == .conflict)
    }

    @Test func rebalancingLeavesEveryGroupWithinOneOfTheOthersInTheFewestMoves() throws {
        // Two groups holding 8 partitions, then a third added: it takes 2 (one from each), the
        // highest-numbered of the groups holding the most.
        let grown = try PartitionMap(partitions: 8, groups: ["a", "b"]).addingGroup("c")
        let plan = grown.rebalancingMoves()
        #expect(plan.map(\.partition) == [6, 7] && plan.allSatisfy { $0.to == "c" })
        var map = grown
        for (partition, to) in plan {
            map = try map.startingMove(of: partition, to: to).fencingMove(of: partition, id: map.version + 1).completingMove(of: partition, id: map.version + 1)
        }
        #expect(map.rebalancingMoves().isEmpty)
        let counts = map.groups.indices.map { group in map.assignment.filter { $0 == group }.count }
        #expect(counts.max()! - counts.min()! <= 1 && counts.reduce(0, +) == 8)
        // Balanced already: nothing to do; a move in progress counts where it goes.
        #expect(try PartitionMap(partitions: 9, groups: ["a", "b", "c"]).rebalancingMoves().isEmpty)
        let moving = try grown.startingMove(of: 0, to: "c")
        #expect(moving.rebalancingMoves().count == 1 && moving.rebalancingMoves()[0].partition != 0)
        // Everything in one group of four: three quarters leave it.
        let lopsided = try PartitionMap(partitions: 12, groups: ["a", "b", "c", "d"], assignment: Array(repeating: 0, count: 12), overrides: [:])
        let spread = lopsided.rebalancingMoves()
        #expect(spread.count == 9 && Set(spread.map(\.to)) == ["b", "c", "d"])
    }

    @Test func rebalancingBySizeEvensOutTheGroupsRecords() throws {
        // Group a holds 0, 2, 4 (900 records), b holds 1, 3, 5 (60), c is new and holds nothing.
        let grown = try PartitionMap(partitions: 6, groups: ["a", "b"]).addingGroup("c")
        let sizes = [0: 500, 2: 300, 4: 100, 1: 20, 3: 20, 5: 20]
        let plan = grown.rebalancingMoves(bySize: sizes)
        var map = grown
        for (partition, to) in plan {
            map = try map.startingMove(of: partition, to: to).fencingMove(of: partition, id: map.version + 1).completingMove(of: partition, id: map.version + 1)
        }
        let totals = map.groups.indices.map { group in (0..<6).filter { map.assignment[$0] == group }.map { sizes[$0] ?? 0 }.reduce(0, +) }
        // 500 alone is the largest partition: it goes to c; then 100 to b (300 would leave a at 100).
        #expect(plan.map(\.partition) == [0, 4] && plan.map(\.to) == ["c", "b"], "\(plan)")
        #expect(totals == [300, 160, 500])
        #expect(map.rebalancingMoves(bySize: sizes).isEmpty, "nothing narrows the spread further")
        // Equal sizes: nothing to do; a move in progress counts where it goes and is not planned again.
        #expect(try PartitionMap(partitions: 4, groups: ["a", "b"]).rebalancingMoves(bySize: [0: 5, 1: 5, 2: 5, 3: 5]).isEmpty)
        let moving = try grown.startingMove(of: 0, to: "c")
        #expect(!moving.rebalancingMoves(bySize: sizes).contains { $0.partition == 0 })
        #expect(grown.rebalancingMoves(bySize: sizes, maximumMoves: 1).count == 1)
    }

    @Test func aMapWrittenOtherThanByTheToolsCannotFollow() throws {
        let map = try PartitionMap(partitions: 4, groups: ["a", "b"])
        let swapped = try PartitionMap(partitions: 4, groups: ["b", "a"])
        #expect(!swapped.canFollow(map), "same version, other assignment")
        let renumbered = try PartitionMap(partitions: 4, groups: ["b", "a"], assignment: [0, 0, 0, 0], overrides: [:], version: 9)
        #expect(!renumbered.canFollow(map), "groups reordered")
        let resized = try PartitionMap(partitions: 8, groups: ["a", "b"], assignment: [0, 1, 0, 1, 0, 1, 0, 1], overrides: [:], version: 9)
        #expect(!resized.canFollow(map))
        let overridden = try PartitionMap(partitions: 4, groups: ["a", "b"], assignment: map.assignment, overrides: ["t": 1], version: 9)
        #expect(!overridden.canFollow(map))
        #expect(map.canFollow(map))
    }

    @Test(arguments: [
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":0}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"0":{"to":"c","id":2}}}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"0":{"to":"a","id":2}}}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"0":{"to":"b","id":3}}}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"2":{"to":"b","id":2}}}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"x":{"to":"b","id":2}}}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":[]}"#,
        #"{"partitions":2,"hash":"fnv1a64","groups":["a","b"],"assignment":[0,1],"version":2,"moves":{"0":{"to":"b","id":2,"fenced":1}}}"#,
    ])
    func aMalformedMoveOrVersionIsRefused(_ text: String) {
        let error = #expect(throws: LearnStoreError.self) { try PartitionMap.decode(Array(text.utf8)) }
        #expect(error?.code == .protocolViolation)
    }

    @Test func theInitializerRefusesWhatTheDecoderRefuses() {
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 0, groups: ["a"]) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: []) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: ["a"], overrides: ["t": 4]) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: ["a", "b"], assignment: [0, 1, 2, 0], overrides: [:]) }
    }
}
