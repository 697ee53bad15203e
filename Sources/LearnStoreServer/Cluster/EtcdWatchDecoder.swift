import Foundation
import LearnStoreModel

/// One answer of etcd's watch stream (the JSON gateway's `POST /v3/watch`).
public struct EtcdWatchResponse: Sendable, Equatable {
    public enum Event: Sendable, Equatable {
        case put(EtcdClient.KeyValue)
        case delete(key: String, modRevision: Int64)

        var modRevision: Int64 {
            switch self {
            case .put(let kv): return kv.modRevision
            case .delete(_, let revision): return revision
            }
        }
    }

    /// The store's revision when etcd sent the answer (0 when it gave none).
    public var revision: Int64 = 0
    public var created = false
    /// etcd ended the watch; with `compactRevision`, because the revisions asked for were compacted.
    public var canceled = false
    public var compactRevision: Int64 = 0
    public var events: [Event] = []

    static func parse(_ json: JSONValue) throws(LearnStoreError) -> EtcdWatchResponse {
        if let error = json["error"] {
            throw LearnStoreError(.connectionFailed, "etcd ended the watch: \(error["message"]?.stringValue ?? error.serialized)")
        }
        guard let result = json["result"] else { throw EtcdClient.malformed("a watch answer") }
        var response = EtcdWatchResponse()
        response.revision = EtcdClient.int64(result["header"]?["revision"]) ?? 0
        response.created = result["created"]?.boolValue ?? false
        response.canceled = result["canceled"]?.boolValue ?? false
        response.compactRevision = EtcdClient.int64(result["compact_revision"]) ?? 0
        for event in result["events"]?.arrayValue ?? [] {
            let kv = try EtcdClient.keyValues(.array([event["kv"] ?? .null])).first
            guard let kv else { throw EtcdClient.malformed("a watch event") }
            switch event["type"]?.stringValue {
            case nil, "PUT"?: response.events.append(.put(kv))
            case "DELETE"?: response.events.append(.delete(key: kv.key, modRevision: kv.modRevision))
            case let other?: throw EtcdClient.malformed("a watch event of type \(other)")
            }
        }
        return response
    }
}

/// Cuts etcd's watch stream into answers: one JSON object per line, in chunks cut anywhere.
struct EtcdWatchDecoder {
    /// A line longer than this is refused rather than buffered (the cluster's keys are a few KiB).
    static let maximumLineBytes = 4 << 20
    private var pending: [UInt8] = []

    mutating func feed(_ bytes: some Collection<UInt8>) throws(LearnStoreError) -> [EtcdWatchResponse] {
        var responses: [EtcdWatchResponse] = []
        for byte in bytes {
            guard byte == UInt8(ascii: "\n") else {
                guard pending.count < Self.maximumLineBytes else {
                    throw LearnStoreError(.protocolViolation, "etcd sent a watch answer longer than \(Self.maximumLineBytes) bytes")
                }
                pending.append(byte)
                continue
            }
            defer { pending.removeAll(keepingCapacity: true) }
            guard pending.contains(where: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\r") }) else { continue }
            let json: JSONValue
            do { json = try JSONValue.parse(pending) } catch { throw EtcdClient.malformed("a watch answer (\(error))") }
            responses.append(try EtcdWatchResponse.parse(json))
        }
        return responses
    }
}
