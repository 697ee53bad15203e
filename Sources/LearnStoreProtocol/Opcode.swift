/// Frame opcodes (docs/PROTOCOL.md, section 4). Plain constants: an unknown opcode is a value, not
/// a decoding failure, so the server can answer it with UNKNOWN_OPCODE.
public enum Opcode {
    public static let hello: UInt8 = 0x01
    public static let auth: UInt8 = 0x02
    public static let ping: UInt8 = 0x03
    public static let info: UInt8 = 0x04
    /// Waits until the tenant has applied a sequence on this node (read-your-writes on a replica).
    public static let waitSequence: UInt8 = 0x05
    /// Where the cluster's primary and nodes are (JSON).
    public static let topology: UInt8 = 0x06

    public static let create: UInt8 = 0x10
    public static let createBatch: UInt8 = 0x11
    public static let get: UInt8 = 0x12
    public static let patch: UInt8 = 0x13
    public static let delete: UInt8 = 0x14
    public static let restore: UInt8 = 0x15
    public static let purgePerson: UInt8 = 0x16
    public static let list: UInt8 = 0x17
    public static let stats: UInt8 = 0x18

    // Canvas outcome data (docs/PROTOCOL.md, appendix B; HELLO feature bit 1).
    public static let outcomeIngest: UInt8 = 0x40
    public static let outcomeGet: UInt8 = 0x41
    public static let outcomeTree: UInt8 = 0x42
    public static let outcomeResults: UInt8 = 0x43
    public static let outcomeProficiency: UInt8 = 0x44
    public static let outcomeRollup: UInt8 = 0x45
    public static let outcomeStudentRollups: UInt8 = 0x46
    public static let outcomeAggregates: UInt8 = 0x47

    // Administration (docs/PROTOCOL.md, appendix C; HELLO feature bit 2).
    public static let adminSnapshot: UInt8 = 0x80
    public static let adminRestoreTenant: UInt8 = 0x81
    public static let adminImport: UInt8 = 0x82

    // Change feed (docs/PROTOCOL.md, appendix D; HELLO feature bit 3).
    public static let subscribe: UInt8 = 0xA0
    public static let feedCredit: UInt8 = 0xA1
    public static let feedEvents: UInt8 = 0xA2

    public static let outcomesRange: ClosedRange<UInt8> = 0x40...0x6F
    public static let adminRange: ClosedRange<UInt8> = 0x80...0x9F

    public static func name(_ opcode: UInt8) -> String {
        names[opcode] ?? String(format: opcode)
    }

    public static let names: [UInt8: String] = [
        hello: "hello", auth: "auth", ping: "ping", info: "info", waitSequence: "wait_sequence", topology: "topology", create: "create", createBatch: "create_batch",
        get: "get", patch: "patch", delete: "delete", restore: "restore", purgePerson: "purge_person",
        list: "list", stats: "stats",
        outcomeIngest: "outcome_ingest", outcomeGet: "outcome_get", outcomeTree: "outcome_tree",
        outcomeResults: "outcome_results", outcomeProficiency: "outcome_proficiency", outcomeRollup: "outcome_rollup",
        outcomeStudentRollups: "outcome_student_rollups", outcomeAggregates: "outcome_aggregates",
        adminSnapshot: "admin_snapshot", adminRestoreTenant: "admin_restore_tenant", adminImport: "admin_import",
        subscribe: "subscribe", feedCredit: "feed_credit", feedEvents: "feed_events",
    ]

    static func String(format opcode: UInt8) -> Swift.String {
        "op_0x" + Swift.String(opcode, radix: 16)
    }
}

/// HELLO feature bits (docs/PROTOCOL.md, section 7).
public struct ProtocolFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public static let records = ProtocolFeatures(rawValue: 1 << 0)
    public static let outcomes = ProtocolFeatures(rawValue: 1 << 1)
    public static let admin = ProtocolFeatures(rawValue: 1 << 2)
    public static let feed = ProtocolFeatures(rawValue: 1 << 3)
}

public enum ProtocolVersion {
    public static let current: UInt16 = 1
    public static let supported: ClosedRange<UInt16> = 1...1
}
