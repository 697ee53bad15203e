import LearnStoreModel
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A watch of a key prefix on etcd's JSON gateway: one long HTTP response that streams an answer per
/// change. The answers wait in `take()`'s inbox (the cluster agent drains it each round) and each one
/// rings `wakeup`, so the agent reacts to a change at once instead of at its next round.
public final class EtcdWatch: Sendable {
    private let channel: any Channel
    private let inbox: EtcdWatchInbox
    /// The answers a watch may hold before the agent drains them: past it, the watch ends (the agent
    /// reads the keys again), so a stalled agent cannot make it grow.
    static let maximumWaiting = 10_000

    init(channel: any Channel, inbox: EtcdWatchInbox) {
        self.channel = channel
        self.inbox = inbox
    }

    /// The answers received since the last call, and why the watch ended (nil while it runs).
    public func take() -> (responses: [EtcdWatchResponse], ended: String?) {
        inbox.state.withLock { inbox in
            defer { inbox.responses.removeAll() }
            return (inbox.responses, inbox.ended)
        }
    }

    public func close() { channel.close(promise: nil) }
}

extension EtcdClient {
    /// Watches the keys starting with `prefix`, from revision `from` on (every change after a range
    /// read at revision R: `from` = R + 1). Connects to the first endpoint that answers.
    public func watch(prefix: String, from revision: Int64, wakeup: Wakeup) async throws(LearnStoreError) -> EtcdWatch {
        let request = JSONValue.object([("create_request", .object([
            ("key", Self.base64(prefix)), ("range_end", Self.base64(Self.prefixEnd(prefix))), ("start_revision", .string(String(revision))),
        ]))])
        let body = Array(request.serialized.utf8)
        var failures: [String] = []
        for endpoint in endpoints {
            let inbox = EtcdWatchInbox()
            do throws(LearnStoreError) {
                let channel = try await send("/v3/watch", body, to: endpoint, reading: EtcdWatchHandler(inbox: inbox, wakeup: wakeup))
                return EtcdWatch(channel: channel, inbox: inbox)
            } catch {
                failures.append("\(endpoint.host):\(endpoint.port): \(error.message)")
            }
        }
        throw LearnStoreError(.connectionFailed, "no etcd endpoint took the watch: \(failures.joined(separator: "; "))")
    }
}

/// What a watch received and not yet handed over, and why it ended.
final class EtcdWatchInbox: Sendable {
    let state = Mutex<(responses: [EtcdWatchResponse], ended: String?)>(([], nil))
}

/// Feeds the watch's response body to the decoder and queues its answers; any fault ends the watch.
final class EtcdWatchHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    private let inbox: EtcdWatchInbox
    private let wakeup: Wakeup
    private var decoder = EtcdWatchDecoder()

    init(inbox: EtcdWatchInbox, wakeup: Wakeup) {
        self.inbox = inbox
        self.wakeup = wakeup
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status != .ok { end(context, "etcd answered the watch with HTTP \(head.status.code)") }
        case .body(let buffer):
            do throws(LearnStoreError) {
                let responses = try decoder.feed(buffer.readableBytesView)
                guard !responses.isEmpty else { return }
                let overflow = inbox.state.withLock { inbox in
                    inbox.responses += responses
                    return inbox.responses.count > EtcdWatch.maximumWaiting
                }
                if overflow { return end(context, "more than \(EtcdWatch.maximumWaiting) watch answers waited") }
                wakeup.ring()
            } catch {
                end(context, error.message)
            }
        case .end:
            end(context, "etcd ended the watch")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end(context, "the watch connection closed")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end(context, "\(error)")
    }

    private func end(_ context: ChannelHandlerContext, _ reason: String) {
        let first = inbox.state.withLock { inbox in
            guard inbox.ended == nil else { return false }
            inbox.ended = reason
            return true
        }
        guard first else { return }
        wakeup.ring()
        context.close(promise: nil)
    }
}
