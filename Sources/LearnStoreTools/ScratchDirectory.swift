import Foundation

/// A directory a tool writes its working files to, which it cleans up without ever deleting
/// anything it did not create: a directory given by the user must be new or empty, and only the
/// tool's own entries in it are removed.
public struct ScratchDirectory: Sendable {
    public let path: String
    /// Whether this tool created the directory (then it removes it whole).
    public let created: Bool

    public struct Refused: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Uses `path` if it does not exist (creating it) or is an empty directory; otherwise refuses.
    /// Without a path, creates a new directory under the system's temporary directory.
    public init(path: String?, prefix: String) throws {
        let manager = FileManager.default
        guard let path else {
            let fresh = NSTemporaryDirectory() + prefix + UUID().uuidString
            try manager.createDirectory(atPath: fresh, withIntermediateDirectories: true)
            self.path = fresh
            self.created = true
            return
        }
        var isDirectory: ObjCBool = false
        if manager.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw Refused(description: "\(path) exists and is not a directory; give a new or empty directory")
            }
            let entries = try manager.contentsOfDirectory(atPath: path)
            guard entries.isEmpty else {
                throw Refused(description: "\(path) is not empty (\(entries.count) entries); give a new or empty directory, its contents would be mixed with this tool's files")
            }
            self.created = false
        } else {
            try manager.createDirectory(atPath: path, withIntermediateDirectories: true)
            self.created = true
        }
        self.path = path
    }

    /// Removes the directory if this tool created it, else only `entries` (the tool's own files).
    public func clean(entries: [String]) {
        let manager = FileManager.default
        if created {
            try? manager.removeItem(atPath: path)
        } else {
            for entry in entries { try? manager.removeItem(atPath: (path as NSString).appendingPathComponent(entry)) }
        }
    }
}
