import Dispatch
import Foundation
import LearnStoreModel
import LearnStoreProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP connection that speaks raw bytes, for tests that must send what no well-behaved
/// client would (garbage, huge lengths, one byte at a time).
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Set when the server sent a length below the minimum (no server may; the bytes cannot be framed).
    private(set) var malformedFrameSeen = false
    /// Set when a receive ended with a TCP reset rather than an orderly close.
    private(set) var endedWithReset = false
    /// Blocking socket calls run here, never on Swift's cooperative pool (which has one thread per
    /// core: blocking it would starve the in-process server).
    private let queue = DispatchQueue(label: "raw-connection")

    private func blocking<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: body()) }
        }
    }

    /// `receiveTimeout` is a deadline for an answer that is due, not a wait: the suite runs tests in
    /// parallel on two cores, where a server's answer can take seconds to be scheduled.
    init(port: Int, receiveTimeout: Double = 30) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LearnStoreError(.connectionFailed, "socket()") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        // Not closed here: a class whose initializer throws once every property is set is
        // deinitialized, and `deinit` closes it. Closing it twice could close a descriptor the
        // process has opened meanwhile under the same number (an event loop's, Dispatch's timers').
        guard result == 0 else { throw LearnStoreError(.connectionFailed, "connect() errno \(errno)") }
        var timeout = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - Double(Int(receiveTimeout))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// Shuts the socket down both ways (a send blocked on a full buffer returns).
    func closeNow() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends all bytes; false if the peer closed.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Sends that may block (a peer that is not reading) run on their own queue, so a receive can go on.
    private let sendQueue = DispatchQueue(label: "raw-connection-send")

    /// `send` off the cooperative pool; false if the peer closed.
    @discardableResult
    func sendAsync(_ bytes: [UInt8]) async -> Bool {
        await withCheckedContinuation { continuation in
            sendQueue.async { continuation.resume(returning: self.send(bytes)) }
        }
    }

    /// The next whole frame, or nil on timeout or close.
    func receiveFrame() async -> (header: FrameHeader, payload: [UInt8])? {
        await blocking { self.receiveFrameBlocking() }
    }

    func receiveFrameBlocking() -> (header: FrameHeader, payload: [UInt8])? {
        while true {
            if buffer.count >= 4 {
                let length = Int(UInt32(buffer[0]) | UInt32(buffer[1]) << 8 | UInt32(buffer[2]) << 16 | UInt32(buffer[3]) << 24)
                guard length >= FrameHeader.countedSize else {
                    malformedFrameSeen = true
                    return nil
                }
                if buffer.count >= length + 4 {
                    let header = FrameHeader(
                        opcode: buffer[4], flags: buffer[5],
                        requestID: UInt32(buffer[6]) | UInt32(buffer[7]) << 8 | UInt32(buffer[8]) << 16 | UInt32(buffer[9]) << 24)
                    let payload = Array(buffer[10..<(length + 4)])
                    buffer.removeFirst(length + 4)
                    return (header, payload)
                }
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received <= 0 {
                endedWithReset = received < 0 && errno == ECONNRESET
                return nil
            }
            buffer.append(contentsOf: chunk[0..<received])
        }
    }

    /// True once the server has closed the connection (reads return 0), within the receive timeout.
    func isClosedByPeer() async -> Bool {
        await blocking { self.isClosedByPeerBlocking() }
    }

    func isClosedByPeerBlocking() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received == 0 { return true }
            if received < 0 {
                endedWithReset = errno == ECONNRESET
                return endedWithReset
            }
        }
    }

    func error(of frame: (header: FrameHeader, payload: [UInt8])) -> LearnStoreError? {
        guard frame.header.isError else { return nil }
        return try? frame.payload.withByteReader { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }
    }

    static func frame(_ opcode: UInt8, id: UInt32, flags: UInt8 = 0, _ payload: (inout ByteWriter) -> Void = { _ in }) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: opcode, flags: flags, requestID: id), payload: payload)
        return writer.bytes
    }

    /// HELLO then AUTH; returns the AUTH response.
    func handshake(token: String) async -> (header: FrameHeader, payload: [UInt8])? {
        send(Self.frame(Opcode.hello, id: 1) { HelloRequest(clientName: "raw").encode(into: &$0) })
        guard let hello = await receiveFrame(), !hello.header.isError else { return nil }
        send(Self.frame(Opcode.auth, id: 2) { AuthRequest(token: token).encode(into: &$0) })
        return await receiveFrame()
    }
}
