import NIOCore
import NIOPosix

extension ClientBootstrap {
    /// Connects to `host`, which is usually an IP address: that is connected to at once. A name goes
    /// through NIO's resolver, whose `getaddrinfo` waits for a thread of Dispatch's shared pool, the
    /// pool Swift's tasks run on; a busy pool would hold a node's connection to etcd or to its peers.
    func connect(hostOrAddress host: String, port: Int) -> EventLoopFuture<any Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return connect(to: address) }
        return connect(host: host, port: port)
    }
}
