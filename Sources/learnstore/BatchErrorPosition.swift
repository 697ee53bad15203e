import LearnStoreModel

/// The server names a bad element of a batch by its index in that batch (`record 3: ...`,
/// docs/PROTOCOL.md 4.5 and C.4). A command that splits its input into batches renames it by its
/// position in the whole input, so the person can find it, and says what earlier batches stored.
enum BatchErrorPosition {
    /// `error` with a leading `"<label> <index in batch>"` (followed by `:` or a space) replaced by
    /// `rename(index)`; other messages, or a nil from `rename`, leave it as it was.
    static func renaming(_ error: LearnStoreError, label: String, _ rename: (Int) -> String?) -> LearnStoreError {
        let prefix = label + " "
        guard error.message.hasPrefix(prefix) else { return error }
        let rest = error.message.dropFirst(prefix.count)
        let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
        let after = rest.dropFirst(digits.count)
        guard !digits.isEmpty, after.hasPrefix(":") || after.hasPrefix(" "), let index = Int(digits), let position = rename(index) else {
            return error
        }
        var renamed = error
        renamed.message = position + after
        return renamed
    }

    /// `"<label> <index in batch>:"` rewritten as `"<label> <batchStart + index>:"`. The elements before
    /// `batchStart` went in earlier batches, each all-or-nothing and already stored.
    static func inWholeInput(_ error: LearnStoreError, label: String, batchStart: Int) -> LearnStoreError {
        var renamed = renaming(error, label: label) { index in
            let (position, overflow) = batchStart.addingReportingOverflow(index)
            return overflow ? nil : "\(label) \(position)"
        }
        if batchStart > 0 {
            renamed.message += " (\(label)s 0 to \(batchStart - 1), sent in earlier batches, are stored)"
        }
        return renamed
    }

    /// An import batch's error with its record or outcome row named by its line in the input file.
    /// `lines` holds each element's kind and line number, in batch order; `importedLines` lines went
    /// in earlier batches and are imported.
    static func inImportFile(_ error: LearnStoreError, lines: [(isRecord: Bool, number: Int)], importedLines: Int) -> LearnStoreError {
        let recordLines = lines.filter(\.isRecord).map(\.number)
        let rowLines = lines.filter { !$0.isRecord }.map(\.number)
        var renamed = renaming(error, label: "record") { recordLines.indices.contains($0) ? "line \(recordLines[$0])" : nil }
        renamed = renaming(renamed, label: "outcome row") { rowLines.indices.contains($0) ? "line \(rowLines[$0])" : nil }
        if importedLines > 0, let first = lines.first?.number {
            renamed.message += " (the \(importedLines) lines before line \(first), sent in earlier batches, are imported)"
        }
        return renamed
    }
}
