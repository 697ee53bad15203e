import Testing
import LearnStoreModel

/// The `scope` claim is parsed on its bytes; every documented name must read back as itself.
@Suite struct ScopesTests {
    @Test func everyNameParsesAloneAndInAnyCompany() {
        var all: Scopes = []
        for (name, scope) in Scopes.names {
            #expect(Scopes(claim: name) == scope, "\(name)")
            #expect(Scopes(claim: "  other:thing \(name)  records:reader ") == scope, "\(name) among unknown names and extra spaces")
            all.insert(scope)
        }
        #expect(Scopes(claim: Scopes.names.map(\.0).reversed().joined(separator: " ")) == all)
        #expect(Scopes(claim: all.description) == all)
        #expect(Scopes(claim: "") == [] && Scopes(claim: "ADMIN records:Read") == [], "names are case-sensitive")
    }
}
