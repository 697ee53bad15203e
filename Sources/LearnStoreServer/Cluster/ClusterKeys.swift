/// The cluster's keys as this node knows them: a range read at some revision, then the events of a
/// watch from the revision after it. A watch that breaks resumes from `revision + 1` and misses
/// nothing: etcd sends every change of the prefix after that revision, and an event older than
/// `revision` is passed over. A watch etcd cancels because those revisions were compacted
/// needs a new range read (`isLoaded` turns false).
struct ClusterKeys: Sendable, Equatable {
    private(set) var byKey: [String: EtcdClient.KeyValue] = [:]
    /// Every change of the prefix up to this revision is applied.
    private(set) var revision: Int64 = 0
    private(set) var isLoaded = false

    /// The keys, by key.
    var keyValues: [EtcdClient.KeyValue] { byKey.values.sorted { $0.key < $1.key } }

    mutating func load(revision: Int64, keyValues: [EtcdClient.KeyValue]) {
        byKey = Dictionary(keyValues.map { ($0.key, $0) }, uniquingKeysWith: { $1 })
        self.revision = revision
        isLoaded = true
    }

    /// Forget what the watch said since the last load: the next round reads the keys again.
    mutating func unload() { isLoaded = false }

    /// Applies one answer of the watch.
    mutating func apply(_ response: EtcdWatchResponse) {
        guard isLoaded else { return }
        if response.canceled || response.compactRevision > revision {
            isLoaded = false
            return
        }
        // Events come in revision order, and the events of one transaction share its revision: one at
        // `revision` is applied again (the same change, so nothing changes), one below it is skipped.
        for event in response.events where event.modRevision >= revision {
            switch event {
            case .put(let kv): byKey[kv.key] = kv
            case .delete(let key, _): byKey[key] = nil
            }
            revision = event.modRevision
        }
    }
}
