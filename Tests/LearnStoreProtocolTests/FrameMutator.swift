import LearnStoreModel
import LearnStoreProtocol
import LearnStoreTestSupport

/// Mutations of valid frames, the kinds of damage a network, a buggy client or an attacker produce.
enum FrameMutator {
    static let interestingBytes: [UInt8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF]
    static let interestingWords: [UInt32] = [0, 1, 5, 6, 0x7F, 0x80, 0xFFFF, 1 << 23, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]

    /// Sets the length field to what the bytes after it really are (so framing holds and only the
    /// payload is damaged).
    static func fixLength(_ bytes: inout [UInt8]) {
        guard bytes.count >= 4 else { return }
        let length = UInt32(bytes.count - 4)
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(index))) }
    }

    static func setLength(_ bytes: inout [UInt8], _ length: UInt32) {
        while bytes.count < 4 { bytes.append(0) }
        for index in 0..<4 { bytes[index] = UInt8(truncatingIfNeeded: length >> (8 * UInt32(index))) }
    }

    /// One to three mutations of `frame`.
    static func mutate(_ frame: [UInt8], _ random: inout SeededGenerator) -> [UInt8] {
        var bytes = frame
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            let payloadStart = min(bytes.count, FrameHeader.size)
            switch Int.random(in: 0..<12, using: &random) {
            case 0:  // flip bits anywhere
                guard !bytes.isEmpty else { continue }
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
                }
            case 1:  // flip bits in the payload only, framing intact
                guard bytes.count > payloadStart else { continue }
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: payloadStart..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0...7, using: &random)
                }
            case 2:  // truncate (the length field still promises the rest)
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &random))
            case 3:  // truncate the payload and fix the length
                guard bytes.count > payloadStart else { continue }
                bytes.removeLast(Int.random(in: 1...(bytes.count - payloadStart), using: &random))
                fixLength(&bytes)
            case 4:  // extend with random bytes, length fixed or not
                bytes += random.bytes(Int.random(in: 1...64, using: &random))
                if random.chance(1, in: 2) { fixLength(&bytes) }
            case 5:  // a random opcode (framing intact)
                if bytes.count > 4 { bytes[4] = UInt8.random(in: 0...255, using: &random) }
            case 6:  // a random payload behind a valid header
                bytes = Array(bytes.prefix(payloadStart)) + random.bytes(Int.random(in: 0...256, using: &random))
                fixLength(&bytes)
            case 7:  // an absurd length
                let length = UInt32(max(0, bytes.count - 4))
                let choices: [UInt32] = [0, 1, 5, 6, length &- 1, length &+ 1, 1 << 16, (1 << 16) - 3, 1 << 24, .max,
                                         UInt32.random(in: 0...UInt32.max, using: &random)]
                setLength(&bytes, choices.randomElement(using: &random)!)
            case 8:  // an interesting byte in the payload
                guard bytes.count > payloadStart else { continue }
                bytes[Int.random(in: payloadStart..<bytes.count, using: &random)] = interestingBytes.randomElement(using: &random)!
            case 9:  // an interesting 32-bit word (bitmaps, counts) in the payload
                guard bytes.count >= payloadStart + 4 else { continue }
                let at = Int.random(in: payloadStart...(bytes.count - 4), using: &random)
                let word = interestingWords.randomElement(using: &random)!
                for index in 0..<4 { bytes[at + index] = UInt8(truncatingIfNeeded: word >> (8 * UInt32(index))) }
            case 10:  // a runaway varint, or an enormous one, inserted into the payload
                let at = Int.random(in: payloadStart...bytes.count, using: &random)
                let varint: [UInt8] = random.chance(1, in: 2) ? [UInt8](repeating: 0xFF, count: Int.random(in: 1...12, using: &random))
                                                               : [0xFF, 0xFF, 0xFF, 0xFF, 0x0F]
                bytes.insert(contentsOf: varint, at: at)
                fixLength(&bytes)
            default:  // delete or duplicate a range of the payload
                guard bytes.count > payloadStart else { continue }
                let start = Int.random(in: payloadStart..<bytes.count, using: &random)
                let end = Int.random(in: start...min(bytes.count, start + 32), using: &random)
                if random.chance(1, in: 2) {
                    bytes.removeSubrange(start..<end)
                } else {
                    bytes.insert(contentsOf: bytes[start..<end], at: end)
                }
                fixLength(&bytes)
            }
        }
        return bytes
    }
}
