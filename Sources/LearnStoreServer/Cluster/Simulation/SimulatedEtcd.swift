import LearnStoreModel
import Synchronization

/// The simulation's time: milliseconds since its start, moved only by the simulation.
final class SimulatedTime: Sendable {
    private let milliseconds = Mutex<Int64>(0)
    private let origin = ContinuousClock.now

    var now: Int64 { milliseconds.withLock { $0 } }
    var instant: ContinuousClock.Instant { origin + .milliseconds(now) }
    func advance(by delta: Int64) { milliseconds.withLock { $0 += delta } }
}

/// etcd as the control plane sees it, in memory and on the simulation's time: a key-value store with
/// one revision counter, leases that expire TTL after their last renewal (etcd 3.4 grants at least 2
/// s), transactions that compare revisions, and watches that see every change in revision order. It
/// can be out of reach for everyone (an election after its leader died: afterwards every lease runs
/// its full TTL again, as etcd's new leader re-arms them) or for one node.
final class SimulatedEtcd: Sendable {
    struct Lease {
        var ttlSeconds: Int
        var expiresAt: Int64
    }

    struct State {
        var revision: Int64 = 1
        var keys: [String: EtcdClient.KeyValue] = [:]
        var leases: [Int64: Lease] = [:]
        var nextLease: Int64 = 1000
        /// Every change, in revision order, for watches.
        var changes: [EtcdWatchResponse.Event] = []
        var outageUntil: Int64 = 0
        var cutOffUntil: [String: Int64] = [:]
    }

    let time: SimulatedTime
    private let state = Mutex(State())

    init(time: SimulatedTime) { self.time = time }

    /// The whole store is out of reach for `milliseconds` (a leader election); leases are re-armed after.
    func outage(milliseconds: Int64) {
        state.withLock { $0.outageUntil = max($0.outageUntil, time.now + milliseconds) }
    }

    /// `node` cannot reach etcd for `milliseconds`.
    func cutOff(_ node: String, milliseconds: Int64) {
        state.withLock { $0.cutOffUntil[node] = max($0.cutOffUntil[node] ?? 0, time.now + milliseconds) }
    }

    func isOut(for node: String) -> Bool {
        let now = time.now
        return state.withLock { now < $0.outageUntil || now < ($0.cutOffUntil[node] ?? 0) }
    }

    /// Expires the leases whose time has come and ends a finished outage; called as time moves.
    func tick() {
        let now = time.now
        state.withLock { state in
            if state.outageUntil != 0 && now >= state.outageUntil {
                state.outageUntil = 0
                for id in state.leases.keys { state.leases[id]!.expiresAt = now + Int64(state.leases[id]!.ttlSeconds) * 1000 }
            }
            guard now >= state.outageUntil else { return }
            let expired = state.leases.filter { $0.value.expiresAt <= now }.map(\.key)
            for id in expired { Self.dropLease(id, &state) }
        }
    }

    /// The keys as a linearizable read sees them now (for the simulation's checks).
    var keyValues: [String: EtcdClient.KeyValue] { state.withLock { $0.keys } }

    /// `node`'s view of etcd; with `scheduler`, each call waits for its turn first.
    func endpoint(for node: String, scheduler: SimulatedScheduler? = nil) -> Endpoint { Endpoint(etcd: self, node: node, scheduler: scheduler) }

    private static func dropLease(_ id: Int64, _ state: inout State) {
        guard state.leases.removeValue(forKey: id) != nil else { return }
        let held = state.keys.values.filter { $0.lease == id }.map(\.key).sorted()
        guard !held.isEmpty else { return }
        state.revision += 1
        for key in held {
            state.keys[key] = nil
            state.changes.append(.delete(key: key, modRevision: state.revision))
        }
    }

    fileprivate func run<T>(_ node: String, _ body: (inout State, Int64) throws(LearnStoreError) -> T) throws(LearnStoreError) -> T {
        guard !isOut(for: node) else { throw LearnStoreError(.connectionFailed, "etcd: no member answered (simulated)") }
        let now = time.now
        return try state.withLock { (state: inout State) throws(LearnStoreError) -> T in try body(&state, now) }
    }

    fileprivate func changes(after revision: Int64, node: String) -> [EtcdWatchResponse.Event] {
        guard !isOut(for: node) else { return [] }
        return state.withLock { state in state.changes.filter { $0.modRevision > revision } }
    }

    /// One node's view of etcd: out of reach while the node is cut off.
    struct Endpoint: ControlPlaneStore {
        let etcd: SimulatedEtcd
        let node: String
        let scheduler: SimulatedScheduler?

        private func run<T>(_ body: (inout State, Int64) throws(LearnStoreError) -> T) async throws(LearnStoreError) -> T {
            if let scheduler, !(await scheduler.turn(node)) { throw LearnStoreError(.connectionFailed, "the node is down (simulated)") }
            return try etcd.run(node, body)
        }

        func grantLease(ttlSeconds: Int) async throws(LearnStoreError) -> (id: Int64, ttlSeconds: Int) {
            try await run { state, now in
                let ttl = max(2, ttlSeconds)
                state.nextLease += 1
                state.leases[state.nextLease] = Lease(ttlSeconds: ttl, expiresAt: now + Int64(ttl) * 1000)
                return (state.nextLease, ttl)
            }
        }

        func keepAlive(lease: Int64) async throws(LearnStoreError) -> Int {
            try await run { state, now in
                guard var held = state.leases[lease] else { return 0 }
                held.expiresAt = now + Int64(held.ttlSeconds) * 1000
                state.leases[lease] = held
                return held.ttlSeconds
            }
        }

        func revoke(lease: Int64) async throws(LearnStoreError) {
            try await run { state, _ in SimulatedEtcd.dropLease(lease, &state) }
        }

        func put(_ key: String, _ value: [UInt8], lease: Int64) async throws(LearnStoreError) {
            _ = try await transaction(if: [], put: [(key, value, lease)], delete: [])
        }

        func get(_ key: String) async throws(LearnStoreError) -> EtcdClient.KeyValue? {
            try await run { state, _ in state.keys[key] }
        }

        func range(prefix: String) async throws(LearnStoreError) -> (revision: Int64, kvs: [EtcdClient.KeyValue]) {
            try await run { state, _ in
                (state.revision, state.keys.values.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key })
            }
        }

        func transaction(
            if compares: [EtcdClient.Compare], put puts: [(key: String, value: [UInt8], lease: Int64)], delete deletes: [String]
        ) async throws(LearnStoreError) -> Bool {
            try await run { (state: inout State, _) throws(LearnStoreError) -> Bool in
                for put in puts where put.lease != 0 && state.leases[put.lease] == nil {
                    throw LearnStoreError(.validation, "etcd: requested lease not found")
                }
                for compare in compares {
                    switch compare {
                    case .modRevision(let key, let revision): if (state.keys[key]?.modRevision ?? 0) != revision { return false }
                    case .createRevision(let key, let revision): if (state.keys[key]?.createRevision ?? 0) != revision { return false }
                    }
                }
                guard !puts.isEmpty || !deletes.isEmpty else { return true }
                state.revision += 1
                for put in puts {
                    let created = state.keys[put.key]?.createRevision ?? state.revision
                    let kv = EtcdClient.KeyValue(key: put.key, value: put.value, createRevision: created, modRevision: state.revision, lease: put.lease)
                    state.keys[put.key] = kv
                    state.changes.append(.put(kv))
                }
                for key in deletes where state.keys.removeValue(forKey: key) != nil {
                    state.changes.append(.delete(key: key, modRevision: state.revision))
                }
                return true
            }
        }

        func watchPrefix(_ prefix: String, from revision: Int64, wakeup: Wakeup) async throws(LearnStoreError) -> any ControlPlaneWatch {
            try await run { _, _ in () }
            return Watch(etcd: etcd, node: node, prefix: prefix, after: revision - 1)
        }
    }

    /// A watch that delivers the changes after its position whenever its node can reach etcd (a
    /// watch cut off goes quiet without ending, as one served by an isolated member does).
    final class Watch: ControlPlaneWatch {
        let etcd: SimulatedEtcd
        let node: String
        let prefix: String
        let after: Mutex<Int64>

        init(etcd: SimulatedEtcd, node: String, prefix: String, after revision: Int64) {
            self.etcd = etcd
            self.node = node
            self.prefix = prefix
            self.after = Mutex(revision)
        }

        func take() -> (responses: [EtcdWatchResponse], ended: String?) {
            let events = etcd.changes(after: after.withLock { $0 }, node: node).filter { event in
                switch event {
                case .put(let kv): kv.key.hasPrefix(prefix)
                case .delete(let key, _): key.hasPrefix(prefix)
                }
            }
            guard let last = events.last else { return ([], nil) }
            after.withLock { $0 = last.modRevision }
            return ([EtcdWatchResponse(revision: last.modRevision, events: events)], nil)
        }

        func close() {}
    }
}
