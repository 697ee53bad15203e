/// What a caller may do; parsed from the JWT `scope` claim (space-separated names).
public struct Scopes: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let recordsRead = Scopes(rawValue: 1 << 0)
    public static let recordsWrite = Scopes(rawValue: 1 << 1)
    public static let outcomesRead = Scopes(rawValue: 1 << 2)
    public static let outcomesWrite = Scopes(rawValue: 1 << 3)
    public static let admin = Scopes(rawValue: 1 << 4)

    public static let names: [(String, Scopes)] = [
        ("records:read", .recordsRead), ("records:write", .recordsWrite), ("outcomes:read", .outcomesRead),
        ("outcomes:write", .outcomesWrite), ("admin", .admin),
    ]

    /// Parses a space-separated scope string; unknown names are ignored (they may be for other services).
    public init(claim: String) {
        var scopes: Scopes = []
        // On the claim's bytes: every AUTH parses one, and splitting the String costs more than the rest.
        for word in claim.utf8.split(separator: UInt8(ascii: " ")) {
            if word.elementsEqual("records:read".utf8) { scopes.insert(.recordsRead) }
            else if word.elementsEqual("records:write".utf8) { scopes.insert(.recordsWrite) }
            else if word.elementsEqual("outcomes:read".utf8) { scopes.insert(.outcomesRead) }
            else if word.elementsEqual("outcomes:write".utf8) { scopes.insert(.outcomesWrite) }
            else if word.elementsEqual("admin".utf8) { scopes.insert(.admin) }
        }
        self = scopes
    }

    public var description: String { Scopes.names.filter { contains($0.1) }.map(\.0).joined(separator: " ") }
}

/// Who is calling: filled from a verified JWT by the server, passed as a plain value to every engine call.
public struct CallerIdentity: Sendable, Hashable {
    public var tenantID: String
    /// Present for tokens minted for one application; such a caller sees only that app's records.
    public var appID: String?
    /// The person (JWT `sub`).
    public var personID: UUID16
    public var scopes: Scopes

    public init(tenantID: String, appID: String? = nil, personID: UUID16, scopes: Scopes) {
        self.tenantID = tenantID
        self.appID = appID
        self.personID = personID
        self.scopes = scopes
    }

    public func require(_ needed: Scopes) throws(LearnStoreError) {
        guard scopes.contains(needed) else {
            throw LearnStoreError(.forbidden, "this operation needs the scope '\(needed)'")
        }
    }

    /// Tenant ids are short, printable and safe to use in file names.
    public static func isValidTenantID(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "."):
                true
            default: false
            }
        } && bytes.first != UInt8(ascii: ".")
    }
}
