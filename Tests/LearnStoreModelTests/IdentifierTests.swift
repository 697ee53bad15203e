import Testing
@testable import LearnStoreModel

@Suite struct RecordIDTests {
    @Test func formatAndParseRoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        var generator = ULIDGenerator()
        for _ in 0..<2000 {
            let id = generator.next(milliseconds: UInt64.random(in: 0..<(1 << 48)), using: &rng)
            let text = id.description
            #expect(text.count == 29)
            #expect(text.hasPrefix("lr_"))
            #expect(RecordID(text) == id)
            #expect(RecordID(text.lowercased()) == id)
        }
    }

    @Test func knownValue() throws {
        // The ULID spec example: 01ARZ3NDEKTSV4RRFFQ69G5FAV
        let id = try #require(RecordID("lr_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        #expect(id.milliseconds == 1_469_922_850_259)
        #expect(id.description == "lr_01ARZ3NDEKTSV4RRFFQ69G5FAV")
    }

    @Test(arguments: ["", "lr_", "per_01ARZ3NDEKTSV4RRFFQ69G5FAV", "lr_81ARZ3NDEKTSV4RRFFQ69G5FAV",
                      "lr_01ARZ3NDEKTSV4RRFFQ69G5FA", "lr_01ARZ3NDEKTSV4RRFFQ69G5FAVV", "lr_01ARZ3NDEKTSV4RRFFQ69G5FA!"])
    func rejectsMalformed(text: String) {
        #expect(RecordID(text) == nil)
    }

    @Test func crockfordAliases() {
        #expect(RecordID("lr_0IARZ3NDEKTSV4RRFFQ69G5FAV") == RecordID("lr_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
        #expect(RecordID("lr_O1ARZ3NDEKTSV4RRFFQ69G5FAV") == RecordID("lr_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
    }

    @Test func monotonicWithinAMillisecondAndWhenTheClockStepsBack() {
        var rng = SystemRandomNumberGenerator()
        var generator = ULIDGenerator()
        var previous = generator.next(milliseconds: 1000, using: &rng)
        for ms: UInt64 in [1000, 1000, 1000, 999, 500, 1000, 1001, 1001, 2000, 1500] {
            let next = generator.next(milliseconds: ms, using: &rng)
            #expect(next > previous)
            #expect(next.description > previous.description, "text order follows byte order")
            previous = next
        }
    }

    @Test func overflowOfTheRandomPartMovesToTheNextMillisecond() {
        var rng = SystemRandomNumberGenerator()
        var generator = ULIDGenerator(last: RecordID(milliseconds: 5, randomHigh: .max, randomLow: .max))
        let next = generator.next(milliseconds: 5, using: &rng)
        #expect(next.milliseconds == 6)
        #expect(next > RecordID(milliseconds: 5, randomHigh: .max, randomLow: .max))
    }
}

@Suite struct UUIDTests {
    @Test func roundTrip() throws {
        let text = "5f0c1e2a-7b3d-4c9e-9a1b-000000000042"
        let uuid = try #require(UUID16(text))
        #expect(uuid.description == text)
        #expect(UUID16(text.uppercased()) == uuid)
        #expect(uuid.bytes.count == 16)
        #expect(uuid.bytes.first == 0x5f)
    }

    @Test(arguments: ["", "5f0c1e2a7b3d4c9e9a1b000000000042", "5f0c1e2a-7b3d-4c9e-9a1b-00000000004g",
                      "5f0c1e2a-7b3d-4c9e-9a1b_000000000042", "5f0c1e2a-7b3d-4c9e-9a1b-0000000000421"])
    func rejectsMalformed(text: String) {
        #expect(UUID16(text) == nil)
    }

    @Test func randomIsVersion4() {
        let uuid = UUID16.random()
        #expect(uuid.description[uuid.description.index(uuid.description.startIndex, offsetBy: 14)] == "4")
    }
}

@Suite struct TimestampTests {
    @Test func formatsRFC3339() {
        #expect(Timestamp(milliseconds: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 1_704_067_200_000).rfc3339 == "2024-01-01T00:00:00.000Z")
        #expect(Timestamp(milliseconds: 951_782_400_123).rfc3339 == "2000-02-29T00:00:00.123Z")
        #expect(Timestamp(milliseconds: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.maximum.rfc3339 == "9999-12-31T23:59:59.999Z")
        #expect(Timestamp.minimum.rfc3339 == "0001-01-01T00:00:00.000Z")
    }

    @Test func parsesOffsetsAndFractionsAsInstants() throws {
        let utc = try #require(Timestamp(iso8601: "2020-08-18T23:24:46Z"))
        #expect(Timestamp(iso8601: "2020-08-18T17:24:46-06:00") == utc)
        #expect(Timestamp(iso8601: "2020-08-19T01:24:46+0200") == utc)
        #expect(Timestamp(iso8601: "2020-08-18t23:24:46z") == utc)
        #expect(Timestamp(iso8601: "2019-11-05T10:03:37.526Z")?.milliseconds == 1_572_948_217_526)
        #expect(Timestamp(iso8601: "2019-11-05T10:03:37.5Z")?.milliseconds == 1_572_948_217_500)
        #expect(Timestamp(iso8601: "2019-11-05T10:03:37.526999999Z")?.milliseconds == 1_572_948_217_526)
        #expect(Timestamp(iso8601: "2019-11-05T10:03Z")?.milliseconds == 1_572_948_180_000)
        #expect(Timestamp(iso8601: "2026-03-01")?.rfc3339 == "2026-03-01T00:00:00.000Z")
    }

    @Test(arguments: ["", "2020-02-30T00:00:00Z", "2020-13-01T00:00:00Z", "2020-01-01T24:00:00Z",
                      "2020-01-01T00:00:00", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00Zjunk", "20200101T000000Z",
                      "2020-01-01T00:00:00+25:00", "0000-01-01T00:00:00Z"])
    func rejectsInvalid(text: String) {
        #expect(Timestamp(iso8601: text) == nil)
    }

    @Test func roundTripsEveryFormattedValue() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            let ms = Int64.random(in: Timestamp.minimum.milliseconds...Timestamp.maximum.milliseconds, using: &rng)
            let value = Timestamp(milliseconds: ms)
            #expect(Timestamp(iso8601: value.rfc3339) == value)
        }
    }
}
