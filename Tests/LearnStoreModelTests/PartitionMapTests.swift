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

    @Test func theInitializerRefusesWhatTheDecoderRefuses() {
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 0, groups: ["a"]) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: []) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: ["a"], overrides: ["t": 4]) }
        #expect(throws: LearnStoreError.self) { try PartitionMap(partitions: 4, groups: ["a", "b"], assignment: [0, 1, 2, 0], overrides: [:]) }
    }
}
