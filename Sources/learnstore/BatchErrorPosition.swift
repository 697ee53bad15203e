import LearnStoreModel

/// The server names a bad element of a batch by its index in that batch (`record 3: ...`,
/// docs/PROTOCOL.md 4.5). A command that splits its input into batches renames it by its index in
/// the whole input, and says how many elements the earlier batches already stored, so the person
/// can find the element and knows where to resume.
enum BatchErrorPosition {
    /// `error` with `"<label> <index in batch>:"` rewritten as `"<label> <batchStart + index>:"`;
    /// other messages keep their text. The elements before `batchStart` went in earlier batches, each
    /// all-or-nothing and already stored.
    static func inWholeInput(_ error: LearnStoreError, label: String, batchStart: Int) -> LearnStoreError {
        var renamed = error
        let prefix = label + " "
        if error.message.hasPrefix(prefix) {
            let rest = error.message.dropFirst(prefix.count)
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            if !digits.isEmpty, rest.dropFirst(digits.count).hasPrefix(":"), let index = Int(digits),
                case (let position, false) = batchStart.addingReportingOverflow(index)
            {
                renamed.message = "\(label) \(position)" + rest.dropFirst(digits.count)
            }
        }
        if batchStart > 0 {
            renamed.message += " (\(label)s 0 to \(batchStart - 1), sent in earlier batches, are stored)"
        }
        return renamed
    }
}
