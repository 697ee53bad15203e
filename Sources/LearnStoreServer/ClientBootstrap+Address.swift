import NIOCore
import NIOPosix

extension ClientBootstrap {
    /// Connects to `host`, which is usually an IP address: that is connected to at once, on the
    /// channel's event loop. A name goes through NIO's resolver, which runs `getaddrinfo` on a
    /// Dispatch queue: one more thread a node's connections to etcd and its peers would wait for.
    func connect(hostOrAddress host: String, port: Int) -> EventLoopFuture<any Channel> {
        if let address = try? SocketAddress(ipAddress: host, port: port) { return connect(to: address) }
        return connect(host: host, port: port)
    }
}
