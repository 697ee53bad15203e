import LearnStoreModel
import Testing
@testable import CanvasOutcomes

/// Outcome times from event JSON, the WAL and snapshots stay in the documented range, and the rollup
/// arithmetic on them is total.
@Suite struct OutcomeTimeRangeTests {
    @Test func aLeapSecondInAnEventIsAnInvalidValueNamingTheField() {
        let text = MalformedEventTests.result(
            #""id":"7","learning_outcome_id":"80","user_uuid":"u1","assessed_at":"2016-12-31T23:59:60Z""#)
        do {
            let event = try OutcomeEvent.parse(text: text)
            Issue.record("parsed \(event)")
        } catch {
            #expect(error.reason == .invalidValue)
            #expect(error.field == "body.assessed_at")
            #expect(error.message.contains("leap second"), "\(error)")
        }
    }

    @Test(arguments: [Int64.min, .max, 1 << 62, Timestamp.maximum.milliseconds + 1])
    func anEncodedEntityWithATimeOutsideTheRangeIsRefused(milliseconds: Int64) {
        let result = OutcomeResult(id: "1", learningOutcomeID: "1", userUUID: "u", assessedAt: Timestamp(milliseconds: milliseconds))
        let bytes = OutcomeRecord.entity(.result(result)).encoded
        #expect(throws: DecodeError.self) { try OutcomeRecord.decode(bytes) }
    }

    @Test func wholeSecondsIsAFloorForEveryInt64() {
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: .min)) == Int64.min / 1000 - 1)
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: .max)) == Int64.max / 1000)
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: -1)) == -1)
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: -1000)) == -1)
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: -1001)) == -2)
        #expect(RollupInput.wholeSeconds(Timestamp(milliseconds: 999)) == 0)
        #expect(RollupInput.wholeSeconds(nil) == 0)
    }
}
