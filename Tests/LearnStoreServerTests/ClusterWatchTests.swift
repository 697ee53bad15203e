import Foundation
import LearnStoreModel
@testable import LearnStoreServer
import LearnStoreTestSupport
import LearnStoreTools
import NIOPosix
import Synchronization
import Testing

/// The control plane's watch of the cluster's keys: etcd's stream cut into answers, the keys kept
/// from a range read and the answers after it, and a real watch that breaks and resumes.
@Suite struct ClusterWatchTests {
    /// Answers as etcd 3.4's JSON gateway sent them for: put /p/a (before the watch), put /p/b, delete /p/a.
    static let stream = """
        {"result":{"header":{"cluster_id":"1","member_id":"2","revision":"2","raft_term":"2"},"created":true}}
        {"result":{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"2"},"events":[{"kv":{"key":"L3AvYg==","create_revision":"3","mod_revision":"3","version":"1","value":"Mg=="}}]}}
        {"result":{"header":{"cluster_id":"1","member_id":"2","revision":"4","raft_term":"2"},"events":[{"type":"DELETE","kv":{"key":"L3AvYQ==","mod_revision":"4"}}]}}

        """

    static func kv(_ key: String, _ value: String, revision: Int64) -> EtcdClient.KeyValue {
        EtcdClient.KeyValue(key: key, value: Array(value.utf8), createRevision: revision, modRevision: revision, lease: 0)
    }

    @Test func theStreamDecodesTheSameFedWholeOrByteByByte() throws {
        var whole = EtcdWatchDecoder()
        let all = try whole.feed(Array(Self.stream.utf8))
        var bytewise = EtcdWatchDecoder()
        var pieces: [EtcdWatchResponse] = []
        for byte in Self.stream.utf8 { pieces += try bytewise.feed([byte]) }
        #expect(pieces == all)
        #expect(all.count == 3)
        #expect(all[0].created && all[0].events.isEmpty)
        #expect(all[1].events == [.put(EtcdClient.KeyValue(key: "/p/b", value: Array("2".utf8), createRevision: 3, modRevision: 3, lease: 0))])
        #expect(all[2].events == [.delete(key: "/p/a", modRevision: 4)])
    }

    @Test func aCancelledOrMalformedOrEndlessStreamIsAnError() throws {
        var decoder = EtcdWatchDecoder()
        let cancelled = try decoder.feed(Array(#"{"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"3"}}"#.utf8 + [0x0A]))
        #expect(cancelled.first?.canceled == true && cancelled.first?.compactRevision == 3)
        for bad in [#"{"error":{"message":"etcdserver: no leader"}}"#, #"{"result":{"events":[{"type":"BOOM","kv":{"key":"eA=="}}]}}"#, "not json"] {
            var decoder = EtcdWatchDecoder()
            #expect(throws: LearnStoreError.self, "\(bad)") { _ = try decoder.feed(Array(bad.utf8) + [0x0A]) }
        }
        var endless = EtcdWatchDecoder()
        #expect(throws: LearnStoreError.self) { _ = try endless.feed([UInt8](repeating: 0x20, count: EtcdWatchDecoder.maximumLineBytes + 1)) }
    }

    @Test func theKeysFollowTheWatchFromTheirRevisionAndAskForAReadWhenCompacted() throws {
        var keys = ClusterKeys()
        var decoder = EtcdWatchDecoder()
        let answers = try decoder.feed(Array(Self.stream.utf8))
        // Not loaded yet: answers are ignored (they could not be placed after a read).
        keys.apply(answers[1])
        #expect(keys.keyValues.isEmpty && !keys.isLoaded)
        keys.load(revision: 2, keyValues: [Self.kv("/p/a", "1", revision: 2)])
        for answer in answers { keys.apply(answer) }
        #expect(keys.keyValues == [Self.kv("/p/b", "2", revision: 3)])
        #expect(keys.revision == 4)
        // A resumed watch repeating an older change changes nothing.
        keys.apply(answers[1])
        #expect(keys.keyValues == [Self.kv("/p/b", "2", revision: 3)] && keys.revision == 4)
        // One transaction's changes share a revision, and may arrive again from a resumed watch.
        let both = EtcdWatchResponse(revision: 5, events: [.put(Self.kv("/p/c", "3", revision: 5)), .put(Self.kv("/p/d", "4", revision: 5))])
        keys.apply(both)
        keys.apply(both)
        #expect(keys.keyValues.map(\.key) == ["/p/b", "/p/c", "/p/d"] && keys.revision == 5)
        keys.apply(EtcdWatchResponse(canceled: true, compactRevision: 9))
        #expect(!keys.isLoaded)
    }

    /// A real etcd: the watch reports changes, and one opened again from the revision after the last
    /// change it gave reports the changes made while it was closed, none twice.
    @Test(.enabled(if: EtcdProcess.binary() != nil, "needs etcd (scripts/ensure-deps.sh installs it)"))
    func aWatchResumedAfterItsLastRevisionMissesNothing() async throws {
        let scratch = TemporaryDirectory(prefix: "learnstore-watch-")
        let etcd = try await EtcdProcess.startCluster(members: 1, workDirectory: scratch.path, binary: EtcdProcess.binary()!)
        defer { for member in etcd { member.process.signal(SIGKILL) } }
        let client = try EtcdClient(endpoints: etcd.map(\.clientURL), group: MultiThreadedEventLoopGroup.singleton)
        try await client.put("/w/a", Array("1".utf8))
        var keys = ClusterKeys()
        let (revision, read) = try await client.range(prefix: "/w/")
        keys.load(revision: revision, keyValues: read)
        let wakeup = Wakeup()
        var watch = try await client.watch(prefix: "/w/", from: keys.revision + 1, wakeup: wakeup)
        try await client.put("/w/b", Array("2".utf8))
        try await client.put("/x/outside", Array("9".utf8))
        #expect(await eventually(within: 10) {
            for response in watch.take().responses { keys.apply(response) }
            return keys.keyValues.map(\.key) == ["/w/a", "/w/b"]
        })

        watch.close()
        #expect(await eventually(within: 10) { watch.take().ended != nil })
        try await client.put("/w/c", Array("3".utf8))
        _ = try await client.transaction(if: [], put: [("/w/d", Array("4".utf8), 0)], delete: ["/w/a"])
        watch = try await client.watch(prefix: "/w/", from: keys.revision + 1, wakeup: wakeup)
        #expect(await eventually(within: 10) {
            for response in watch.take().responses { keys.apply(response) }
            return keys.keyValues.map(\.key) == ["/w/b", "/w/c", "/w/d"]
        })
        let (_, truth) = try await client.range(prefix: "/w/")
        #expect(keys.keyValues == truth)
        watch.close()
    }
}

/// The agent's loop waits for a change or its next round.
@Suite struct WakeupTests {
    /// The waits end before their timers (which would take 300 s): how much sooner depends on when
    /// the suite's other tests leave the ringing task a thread, so only that is checked.
    @Test func aRingEndsTheWaitWhetherItCameBeforeOrDuringIt() async {
        let wakeup = Wakeup()
        let clock = ContinuousClock()
        wakeup.ring()
        let early = await clock.measure { await wakeup.wait(upTo: .seconds(300)) }
        #expect(early < .seconds(300))
        async let ringing: Void = wakeup.ring()
        let during = await clock.measure { await wakeup.wait(upTo: .seconds(300)) }
        await ringing
        #expect(during < .seconds(300))
    }

    @Test func withoutARingTheWaitEndsAfterItsDurationAndALateTimerDoesNotEndTheNext() async {
        let wakeup = Wakeup()
        let clock = ContinuousClock()
        let quiet = await clock.measure { await wakeup.wait(upTo: .milliseconds(20)) }
        #expect(quiet >= .milliseconds(20))
        // A wait ended by a ring cancels its timer: the next wait still lasts its own duration.
        wakeup.ring()
        await wakeup.wait(upTo: .milliseconds(30))
        let next = await clock.measure { await wakeup.wait(upTo: .milliseconds(50)) }
        #expect(next >= .milliseconds(50))
    }

    /// A cancelled task's wait ends at once, not at its timer.
    @Test func cancellingTheWaitingTaskEndsTheWait() async {
        let wakeup = Wakeup()
        let ended = Atomic<Bool>(false)
        let waiting = Task {
            await wakeup.wait(upTo: .seconds(300))
            ended.store(true, ordering: .relaxed)
        }
        waiting.cancel()
        #expect(await eventually(within: 60) { ended.load(ordering: .relaxed) })
    }
}
