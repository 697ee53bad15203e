// The least a SwiftNIO server of LearnStore's shape can spend per request: the same bootstrap and
// channel options as `learnstore serve`, one handler that splits frames from the socket's bytes and
// answers each with a fixed reply (the protocol's golden HELLO, AUTH and GET responses, and a LIST
// page of ten copies of that record; request id replaced), one write and flush per read. No token check, no tenant, no lookup, no encoding: what
// it costs per request is the floor under which the server's event-loop path cannot go.
//
//   swift build -c release --product NIOFloor
//   .build/release/NIOFloor --port-file F [--event-loops N] [--golden DIR]
import Foundation
import NIOCore
import NIOPosix

struct Options {
    var portFile = ""
    var eventLoops = System.coreCount
    var golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../../Tests/LearnStoreProtocolTests/Golden").standardized.path

    init(_ arguments: [String]) {
        var rest = arguments.dropFirst()
        while let name = rest.popFirst() {
            guard let value = rest.popFirst() else { fatalError("\(name) needs a value") }
            switch name {
            case "--port-file": portFile = value
            case "--event-loops": eventLoops = Int(value)!
            case "--golden": golden = value
            default: fatalError("unknown option \(name)")
            }
        }
    }
}

/// Each opcode's reply frame, whole; bytes 6..<10 (the request id) are replaced per request.
struct Replies: Sendable {
    let byOpcode: [UInt8: [UInt8]]

    init(golden: String) throws {
        var replies: [UInt8: [UInt8]] = [:]
        for (opcode, name) in [(UInt8(0x01), "hello"), (0x02, "auth"), (0x12, "get")] {
            replies[opcode] = Array(try Data(contentsOf: URL(fileURLWithPath: "\(golden)/\(name)_response.bin")))
        }
        // LIST: a page of ten records (the GET reply's record ten times) and no next cursor.
        let get = replies[0x12]!
        let record = get[10...]
        var list: [UInt8] = [0, 0, 0, 0, 0x17, 0, 0, 0, 0, 0, 10]
        for _ in 0..<10 { list.append(contentsOf: record) }
        list.append(0)
        let length = UInt32(list.count - 4)
        for byte in 0..<4 { list[byte] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(byte))) }
        replies[0x17] = list
        byOpcode = replies
    }
}

final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let replies: Replies
    private var cumulation: ByteBuffer?
    private var outbound: ByteBuffer?

    init(replies: Replies) { self.replies = replies }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil { cumulation = incoming } else { cumulation!.writeBuffer(&incoming) }
        guard var buffer = cumulation else { return }
        cumulation = nil
        while let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self),
            buffer.readableBytes >= 4 + Int(length), length >= 6
        {
            let opcode = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)!
            let requestID = buffer.getInteger(at: buffer.readerIndex + 6, endianness: .little, as: UInt32.self)!
            buffer.moveReaderIndex(forwardBy: 4 + Int(length))
            guard let reply = replies.byOpcode[opcode] else {
                context.close(promise: nil)
                return
            }
            if outbound == nil { outbound = context.channel.allocator.buffer(capacity: reply.count) }
            outbound!.writeBytes(reply)
            outbound!.setInteger(requestID, at: outbound!.writerIndex - reply.count + 6, endianness: .little)
        }
        if buffer.readableBytes > 0 { cumulation = buffer }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        guard let buffer = outbound else { return }
        outbound = nil
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

let options = Options(CommandLine.arguments)
let replies = try Replies(golden: options.golden)
let group = MultiThreadedEventLoopGroup(numberOfThreads: options.eventLoops)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelOption(.writeBufferWaterMark, value: .init(low: 256 << 10, high: 1 << 20))
    .childChannelOption(.maxMessagesPerRead, value: 16)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(FloorHandler(replies: replies))
        }
    }
    .bind(host: "127.0.0.1", port: 0).wait()
let port = channel.localAddress!.port!
if options.portFile.isEmpty {
    print("listening on 127.0.0.1:\(port)")
} else {
    try "\(port)\n".write(toFile: options.portFile, atomically: true, encoding: .utf8)
}
try channel.closeFuture.wait()
