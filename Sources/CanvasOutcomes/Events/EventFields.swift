import LearnStoreModel

/// Typed reads of one JSON object of an event, each failure naming the field's full path.
/// A missing key and an explicit null are the same thing (compact_live_events removes null keys).
struct EventFields {
    let path: String
    private let members: [String: JSONValue]

    init(_ value: JSONValue?, path: String) throws(OutcomeEventError) {
        guard let value, !value.isNull else { throw OutcomeEventError(.missingField, field: path, "object is missing") }
        guard case .object(let pairs) = value else { throw OutcomeEventError(.wrongType, field: path, "expected an object") }
        var members: [String: JSONValue] = [:]
        members.reserveCapacity(pairs.count)
        // A repeated key keeps its last value, as JSONValue's subscript does.
        for (key, member) in pairs { members[key] = member }
        self.members = members
        self.path = path
    }

    func fieldPath(_ key: String) -> String { "\(path).\(key)" }

    private func present(_ key: String) -> JSONValue? {
        guard let value = members[key], !value.isNull else { return nil }
        return value
    }

    private func wrongType(_ key: String, _ expected: String) -> OutcomeEventError {
        OutcomeEventError(.wrongType, field: fieldPath(key), "expected \(expected)")
    }

    /// Identifying strings (uuids, `*_type` names) are short in Canvas; the cap keeps a result's synthetic
    /// key, built from them, a reasonable size.
    static let maximumIdentifierBytes = 1024

    /// A string of at most `limit` UTF-8 bytes (the codec's limit by default, so whatever parses also
    /// encodes and decodes).
    func string(_ key: String, limit: Int = OutcomeCodec.maxStringBytes) throws(OutcomeEventError) -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "a string") }
        guard text.utf8.count <= limit else {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), "longer than \(limit) bytes")
        }
        return text
    }

    func requiredString(_ key: String, limit: Int = OutcomeCodec.maxStringBytes) throws(OutcomeEventError) -> String {
        guard let text = try string(key, limit: limit) else {
            throw OutcomeEventError(.missingField, field: fieldPath(key), "required")
        }
        return text
    }

    /// A uuid or type name (see ``maximumIdentifierBytes``).
    func identifier(_ key: String) throws(OutcomeEventError) -> String? {
        try string(key, limit: Self.maximumIdentifierBytes)
    }

    /// A decimal id given as a string or as a JSON number, taken from its literal text (never via Double).
    func id(_ key: String) throws(OutcomeEventError) -> String? {
        guard let value = present(key) else { return nil }
        let text: String
        switch value {
        case .string(let s): text = s
        case .number(let literal): text = literal
        default: throw wrongType(key, "an id (string or integer)")
        }
        guard CanvasID.isValid(text) else {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), "an id is 1 to \(CanvasID.maximumLength) decimal digits")
        }
        return text
    }

    func requiredID(_ key: String) throws(OutcomeEventError) -> String {
        guard let id = try id(key) else { throw OutcomeEventError(.missingField, field: fieldPath(key), "required") }
        return id
    }

    /// Opaque metadata values (root account ids, guids) kept verbatim, whether sent as string or number.
    func text(_ key: String) throws(OutcomeEventError) -> String? {
        guard let value = present(key) else { return nil }
        switch value {
        case .string(let s) where s.utf8.count <= Self.maximumIdentifierBytes: return s
        case .string: throw OutcomeEventError(.invalidValue, field: fieldPath(key), "longer than \(Self.maximumIdentifierBytes) bytes")
        case .number(let literal): return literal
        default: throw wrongType(key, "a string")
        }
    }

    func double(_ key: String) throws(OutcomeEventError) -> Double? {
        guard let value = present(key) else { return nil }
        guard case .number(let literal) = value else { throw wrongType(key, "a number") }
        guard let number = Double(literal), number.isFinite else {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), "number out of range")
        }
        return number
    }

    func requiredDouble(_ key: String) throws(OutcomeEventError) -> Double {
        guard let number = try double(key) else { throw OutcomeEventError(.missingField, field: fieldPath(key), "required") }
        return number
    }

    /// An integer; `65.0` is accepted as 65, `65.5` is not.
    func int(_ key: String) throws(OutcomeEventError) -> Int? {
        guard let value = present(key) else { return nil }
        guard case .number(let literal) = value else { throw wrongType(key, "an integer") }
        if let exact = Int(literal) { return exact }
        guard let number = Double(literal), number.rounded() == number, abs(number) < 1e15 else {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), "expected an integer")
        }
        return Int(number)
    }

    func bool(_ key: String) throws(OutcomeEventError) -> Bool? {
        guard let value = present(key) else { return nil }
        guard case .bool(let flag) = value else { throw wrongType(key, "true or false") }
        return flag
    }

    /// ISO 8601 with any offset; compared later as an instant.
    func timestamp(_ key: String) throws(OutcomeEventError) -> Timestamp? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "an ISO 8601 string") }
        do {
            return try Timestamp(validatingISO8601: text)
        } catch {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), error.reason)
        }
    }

    func object(_ key: String) throws(OutcomeEventError) -> EventFields? {
        guard let value = present(key) else { return nil }
        return try EventFields(value, path: fieldPath(key))
    }

    /// Each element of an array of objects, with `[i]` in its path.
    func objects(_ key: String, limit: Int = 1024) throws(OutcomeEventError) -> [EventFields]? {
        guard let value = present(key) else { return nil }
        guard case .array(let elements) = value else { throw wrongType(key, "an array") }
        guard elements.count <= limit else {
            throw OutcomeEventError(.invalidValue, field: fieldPath(key), "more than \(limit) elements")
        }
        var out: [EventFields] = []
        out.reserveCapacity(elements.count)
        for (index, element) in elements.enumerated() {
            out.append(try EventFields(element, path: "\(fieldPath(key))[\(index)]"))
        }
        return out
    }
}
