import CanvasOutcomes
import LearnStoreModel
import LearnStoreProtocol
import Testing

/// The change-feed payloads against the bytes of docs/PROTOCOL.md, appendix D.6, and their refusals.
@Suite struct FeedMessageTests {
    static func hex(_ text: String) -> [UInt8] {
        text.split(separator: " ").map { UInt8($0, radix: 16)! }
    }

    static func frame(_ opcode: UInt8, _ requestID: UInt32, _ payload: (inout ByteWriter) -> Void) -> [UInt8] {
        var writer = ByteWriter()
        writer.writeFrame(FrameHeader(opcode: opcode, requestID: requestID), payload: payload)
        return writer.bytes
    }

    @Test func theWorkedExamplesAreWhatTheCodecsWrite() throws {
        #expect(Self.frame(Opcode.subscribe, 7) { FeedMessages.encodeSubscribe(SubscribeRequest(start: .after(41), credit: 256), into: &$0) }
            == Self.hex("13 00 00 00 a0 00 07 00 00 00 00 29 00 00 00 00 00 00 00 00 01 00 00"))
        let response = SubscribeResponse(afterSequence: 41, tenantSequence: 57, oldestSequence: 0, maximumBatchChanges: 1024)
        #expect(Self.frame(Opcode.subscribe, 7) { FeedMessages.encodeSubscribeResponse(response, into: &$0) }
            == Self.hex("22 00 00 00 a0 00 07 00 00 00 29 00 00 00 00 00 00 00 39 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 00 00"))
        let id = RecordID(high: 0x0197_7420_dc00_1111, low: 0x1111_1111_1111_1111)
        let batch = FeedBatch(throughSequence: 42, changes: [FeedChange(sequence: 42, timestamp: Timestamp(milliseconds: 1_750_000_000_000), parts: [.purge([id])])])
        let events = Self.frame(Opcode.feedEvents, 7) { FeedMessages.encodeBatch(batch, into: &$0) }
        #expect(events == Self.hex("""
            32 00 00 00 a2 00 07 00 00 00 2a 00 00 00 00 00 00 00 01 2a 00 00 00 00 00 00 00 00 dc 20 74 97 01 00 00 01 07 01 \
            01 97 74 20 dc 00 11 11 11 11 11 11 11 11 11 11
            """))
        #expect(Self.frame(Opcode.feedCredit, 0) { FeedMessages.encodeCredit(128, into: &$0) } == Self.hex("0a 00 00 00 a1 00 00 00 00 00 80 00 00 00"))
        #expect(try Array(events[10...]).withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeBatch(from: &r) } == batch)
    }

    @Test func everyPartRoundTrips() throws {
        let record = LearningRecord(
            id: RecordID(high: 3, low: 3), tenantID: "acme", appID: "lms", createdAt: Timestamp(milliseconds: 5),
            updatedAt: Timestamp(milliseconds: 9), personID: UUID16(high: 1, low: 2), title: "AWS SAA", score: 88)
        var parts: [FeedChange.Part] = RecordChangeKindName.allCases.map { .records($0, [record]) }
        parts += [.purge([record.id]), .tenantRestore]
        let changes = parts.enumerated().map { FeedChange(sequence: UInt64($0.offset + 1), timestamp: Timestamp(milliseconds: 7), parts: [$0.element]) }
        var writer = ByteWriter()
        FeedMessages.encodeBatch(FeedBatch(throughSequence: 99, changes: changes), into: &writer)
        let back = try writer.bytes.withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeBatch(from: &r) }
        #expect(back.throughSequence == 99 && back.changes == changes)
    }

    @Test func malformedSubscriptionsAreRefusedWithTheirOffset() {
        func decode(_ bytes: [UInt8]) -> DecodeError? {
            do throws(DecodeError) {
                _ = try bytes.withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeSubscribe(from: &r) }
                return nil
            } catch {
                return error
            }
        }
        #expect(decode(Self.hex("02 00 00 00 00 00 00 00 00 01 00 00 00"))?.offset == 0, "an unknown start mode")
        #expect(decode(Self.hex("00 00 00 00 00 00 00 00 00 00 00 00 00"))?.offset == 9, "no credit")
        #expect(decode(Self.hex("00 00 00 00 00 00 00 00 80 01 00 00 00")) != nil, "a sequence above the signed range")
        #expect(decode(Self.hex("00 00 00 00 00 00 00 00 00 01 00 00 00 00")) != nil, "a trailing byte")
        #expect(decode(Self.hex("00 00 00 00")) != nil, "cut short")
        let capped = try? Self.hex("00 05 00 00 00 00 00 00 00 ff ff ff ff").withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeSubscribe(from: &r) }
        #expect(capped?.credit == FeedMessages.maximumCredit, "more credit than the cap is the cap")
    }

    @Test func aBatchAnnouncingMoreChangesThanItHoldsIsRefusedBeforeAllocating() {
        var writer = ByteWriter()
        writer.writeU64(1)
        writer.writeVarint(1 << 40)
        #expect(throws: DecodeError.self) { try writer.bytes.withByteReader { (r) throws(DecodeError) in try FeedMessages.decodeBatch(from: &r) } }
    }
}
