import CanvasOutcomes
import LearnStoreModel

/// Payloads of the rollup opcodes `0x45`–`0x47` (docs/PROTOCOL.md, appendix B): options, the binary
/// rollup and aggregate encodings, scales and ratings.
public enum RollupMessages {
    static let maximumMethodBytes = 64
    static let maximumRatings = 1024
    static let maximumTextBytes = 1 << 20

    enum OptionBit: UInt8 {
        case outcomeCriterion = 0, proficiencyOfContext, legacyDecayingAverage, calculationOverride
        var mask: UInt8 { 1 << rawValue }
    }

    static let knownOptionBits: UInt8 = 0x0F

    // MARK: rollup_options

    public static func writeOptions(_ options: RollupOptions, into writer: inout ByteWriter) {
        var flags: UInt8 = 0
        var proficiencyContext: ContextRef?
        switch options.scale {
        case .outcomeCriterion: flags |= OptionBit.outcomeCriterion.mask
        case .proficiency(let of):
            if let of {
                flags |= OptionBit.proficiencyOfContext.mask
                proficiencyContext = of
            }
        }
        if !options.newDecayingAverage { flags |= OptionBit.legacyDecayingAverage.mask }
        if options.calculationOverride != nil { flags |= OptionBit.calculationOverride.mask }
        writer.writeU8(flags)
        if let proficiencyContext { OutcomeMessages.writeContext(proficiencyContext, into: &writer) }
        if let override = options.calculationOverride {
            writer.writeString(override.method.rawValue)
            if let int = override.calculationInt {
                writer.writeU8(1)
                writer.writeI64(Int64(int))
            } else {
                writer.writeU8(0)
            }
        }
    }

    public static func readOptions(_ reader: inout ByteReader) throws(DecodeError) -> RollupOptions {
        let flags = try reader.readU8()
        guard flags & ~knownOptionBits == 0 else {
            throw DecodeError(offset: reader.offset - 1, reason: "unknown rollup option bits \(flags & ~knownOptionBits)")
        }
        func has(_ bit: OptionBit) -> Bool { flags & bit.mask != 0 }
        guard !(has(.outcomeCriterion) && has(.proficiencyOfContext)) else {
            throw DecodeError(offset: reader.offset - 1, reason: "rollup options name both the criterion and a proficiency context")
        }
        var options = RollupOptions()
        if has(.outcomeCriterion) { options.scale = .outcomeCriterion }
        if has(.proficiencyOfContext) { options.scale = .proficiency(of: try OutcomeMessages.readContext(&reader)) }
        options.newDecayingAverage = !has(.legacyDecayingAverage)
        if has(.calculationOverride) {
            let method = CalculationMethod(try reader.readString(limit: maximumMethodBytes))
            var int: Int?
            if try OutcomeMessages.readBool(&reader) {
                let start = reader.offset
                let value = try reader.readI64()
                guard let fitting = Int(exactly: value) else { throw DecodeError(offset: start, reason: "calculation_int out of range") }
                int = fitting
            }
            options.calculationOverride = RollupOptions.CalculationOverride(method: method, calculationInt: int)
        }
        return options
    }

    // MARK: requests

    public static func encodeRollup(userUUID: String, outcomeID: String, context: ContextRef, options: RollupOptions,
                                    into writer: inout ByteWriter) {
        writeOptions(options, into: &writer)
        writer.writeString(userUUID)
        writer.writeString(outcomeID)
        OutcomeMessages.writeContext(context, into: &writer)
    }

    public static func decodeRollup(from reader: inout ByteReader) throws(DecodeError)
        -> (userUUID: String, outcomeID: String, context: ContextRef, options: RollupOptions) {
        let options = try readOptions(&reader)
        let user = try reader.readString(limit: OutcomeMessages.maximumNameBytes)
        let outcome = try reader.readString(limit: OutcomeMessages.maximumKeyBytes)
        let context = try OutcomeMessages.readContext(&reader)
        try reader.expectEnd()
        return (user, outcome, context, options)
    }

    public static func encodeStudentRollups(userUUID: String, context: ContextRef, options: RollupOptions,
                                            into writer: inout ByteWriter) {
        writeOptions(options, into: &writer)
        writer.writeString(userUUID)
        OutcomeMessages.writeContext(context, into: &writer)
    }

    public static func decodeStudentRollups(from reader: inout ByteReader) throws(DecodeError)
        -> (userUUID: String, context: ContextRef, options: RollupOptions) {
        let options = try readOptions(&reader)
        let user = try reader.readString(limit: OutcomeMessages.maximumNameBytes)
        let context = try OutcomeMessages.readContext(&reader)
        try reader.expectEnd()
        return (user, context, options)
    }

    public static func encodeAggregates(context: ContextRef, options: RollupOptions, into writer: inout ByteWriter) {
        writeOptions(options, into: &writer)
        OutcomeMessages.writeContext(context, into: &writer)
    }

    public static func decodeAggregates(from reader: inout ByteReader) throws(DecodeError) -> (context: ContextRef, options: RollupOptions) {
        let options = try readOptions(&reader)
        let context = try OutcomeMessages.readContext(&reader)
        try reader.expectEnd()
        return (context, options)
    }

    // MARK: rating, scale source, scale

    enum RatingBit: UInt8 {
        case description = 0, color, mastery
        var mask: UInt8 { 1 << rawValue }
    }

    public static func writeRating(_ rating: RollupRating, into writer: inout ByteWriter) {
        writer.writeDouble(rating.points)
        var present: UInt8 = 0
        if rating.description != nil { present |= RatingBit.description.mask }
        if rating.color != nil { present |= RatingBit.color.mask }
        if rating.isMastery != nil { present |= RatingBit.mastery.mask }
        writer.writeU8(present)
        if let description = rating.description { writer.writeString(description) }
        if let color = rating.color { writer.writeString(color) }
        if let mastery = rating.isMastery { writer.writeU8(mastery ? 1 : 0) }
    }

    public static func readRating(_ reader: inout ByteReader) throws(DecodeError) -> RollupRating {
        let points = try reader.readDouble()
        let present = try reader.readU8()
        guard present & ~0x07 == 0 else { throw DecodeError(offset: reader.offset - 1, reason: "unknown rating bits \(present & ~0x07)") }
        func has(_ bit: RatingBit) -> Bool { present & bit.mask != 0 }
        let description = has(.description) ? try reader.readString(limit: maximumTextBytes) : nil
        let color = has(.color) ? try reader.readString(limit: maximumTextBytes) : nil
        let mastery = has(.mastery) ? try OutcomeMessages.readBool(&reader) : nil
        return RollupRating(points: points, description: description, color: color, isMastery: mastery)
    }

    static func writeSource(_ source: RollupScale.Source, into writer: inout ByteWriter) {
        switch source {
        case .outcomeCriterion: writer.writeU8(0)
        case .proficiency(let id):
            writer.writeU8(1)
            writer.writeString(id)
        }
    }

    static func readSource(_ reader: inout ByteReader) throws(DecodeError) -> RollupScale.Source {
        let raw = try reader.readU8()
        switch raw {
        case 0: return .outcomeCriterion
        case 1: return .proficiency(id: try reader.readString(limit: OutcomeMessages.maximumKeyBytes))
        default: throw DecodeError(offset: reader.offset - 1, reason: "unknown scale source \(raw)")
        }
    }

    public static func writeScale(_ scale: RollupScale, into writer: inout ByteWriter) {
        writer.writeDouble(scale.pointsPossible)
        writer.writeDouble(scale.masteryPoints)
        writeSource(scale.source, into: &writer)
        writer.writeVarint(UInt64(scale.ratings.count))
        for rating in scale.ratings { writeRating(rating, into: &writer) }
    }

    public static func readScale(_ reader: inout ByteReader) throws(DecodeError) -> RollupScale {
        let points = try reader.readDouble()
        let mastery = try reader.readDouble()
        let source = try readSource(&reader)
        let count = try reader.readLength(limit: maximumRatings)
        var ratings: [RollupRating] = []
        ratings.reserveCapacity(count)
        for _ in 0..<count { ratings.append(try readRating(&reader)) }
        return RollupScale(pointsPossible: points, masteryPoints: mastery, ratings: ratings, source: source)
    }

    static func writeOptionalTime(_ time: Timestamp?, into writer: inout ByteWriter) {
        if let time {
            writer.writeU8(1)
            writer.writeI64(time.milliseconds)
        } else {
            writer.writeU8(0)
        }
    }

    static func readOptionalTime(_ reader: inout ByteReader) throws(DecodeError) -> Timestamp? {
        try OutcomeMessages.readBool(&reader) ? try reader.readTimestamp() : nil
    }

    // MARK: rollup

    /// One student's rollup for one outcome. The student and context are the request's, so they are
    /// not repeated.
    public static func writeRollup(_ rollup: StudentOutcomeRollup, into writer: inout ByteWriter) {
        writer.writeString(rollup.outcomeID)
        writer.writeDouble(rollup.score)
        writer.writeVarint(UInt64(rollup.count))
        writeOptionalTime(rollup.latestAssessedAt, into: &writer)
        writer.writeU8(rollup.mastered ? 1 : 0)
        if let rating = rollup.rating {
            writer.writeU8(1)
            writeRating(rating, into: &writer)
        } else {
            writer.writeU8(0)
        }
        writer.writeString(rollup.method.rawValue)
        writeSource(rollup.scaleSource, into: &writer)
    }

    public static func readRollup(_ reader: inout ByteReader, userUUID: String, context: ContextRef) throws(DecodeError) -> StudentOutcomeRollup {
        let outcome = try reader.readString(limit: OutcomeMessages.maximumKeyBytes)
        let score = try reader.readDouble()
        let start = reader.offset
        guard let count = Int(exactly: try reader.readVarint()) else { throw DecodeError(offset: start, reason: "count out of range") }
        let latest = try readOptionalTime(&reader)
        let mastered = try OutcomeMessages.readBool(&reader)
        let rating = try OutcomeMessages.readBool(&reader) ? try readRating(&reader) : nil
        let method = CalculationMethod(try reader.readString(limit: maximumMethodBytes))
        let source = try readSource(&reader)
        return StudentOutcomeRollup(userUUID: userUUID, outcomeID: outcome, context: context, score: score, count: count,
                                    latestAssessedAt: latest, mastered: mastered, rating: rating, method: method,
                                    scaleSource: source)
    }

    /// OUTCOME_ROLLUP response: `u8 present`, then the rollup.
    public static func encodeRollupResponse(_ rollup: StudentOutcomeRollup?, into writer: inout ByteWriter) {
        guard let rollup else {
            writer.writeU8(0)
            return
        }
        writer.writeU8(1)
        writeRollup(rollup, into: &writer)
    }

    public static func decodeRollupResponse(from reader: inout ByteReader, userUUID: String,
                                            context: ContextRef) throws(DecodeError) -> StudentOutcomeRollup? {
        let rollup = try OutcomeMessages.readBool(&reader) ? try readRollup(&reader, userUUID: userUUID, context: context) : nil
        try reader.expectEnd()
        return rollup
    }

    /// OUTCOME_STUDENT_ROLLUPS response: `varint count`, the rollups by outcome id.
    public static func encodeRollupsResponse(_ rollups: [StudentOutcomeRollup], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(rollups.count))
        for rollup in rollups { writeRollup(rollup, into: &writer) }
    }

    public static func decodeRollupsResponse(from reader: inout ByteReader, userUUID: String,
                                             context: ContextRef) throws(DecodeError) -> [StudentOutcomeRollup] {
        let count = try reader.readLength(limit: OutcomeMessages.maximumListCount)
        var rollups: [StudentOutcomeRollup] = []
        rollups.reserveCapacity(min(count, 4096))
        for _ in 0..<count { rollups.append(try readRollup(&reader, userUUID: userUUID, context: context)) }
        try reader.expectEnd()
        return rollups
    }

    // MARK: aggregate

    public static func writeAggregate(_ aggregate: ContextOutcomeAggregate, into writer: inout ByteWriter) {
        writer.writeString(aggregate.outcomeID)
        writeScale(aggregate.scale, into: &writer)
        writer.writeDouble(aggregate.mean)
        writer.writeDouble(aggregate.median)
        writer.writeVarint(UInt64(aggregate.studentCount))
        writer.writeVarint(UInt64(aggregate.resultCount))
        writeOptionalTime(aggregate.latestAssessedAt, into: &writer)
        writer.writeU8(aggregate.mastered ? 1 : 0)
        let ratingIndex = aggregate.rating.flatMap { rating in aggregate.scale.ratings.firstIndex(of: rating) }
        writer.writeVarint(ratingIndex.map { UInt64($0 + 1) } ?? 0)
        for index in aggregate.scale.ratings.indices {
            writer.writeVarint(UInt64(index < aggregate.ratingCounts.count ? aggregate.ratingCounts[index] : 0))
        }
    }

    public static func readAggregate(_ reader: inout ByteReader, context: ContextRef) throws(DecodeError) -> ContextOutcomeAggregate {
        let outcome = try reader.readString(limit: OutcomeMessages.maximumKeyBytes)
        let scale = try readScale(&reader)
        let mean = try reader.readDouble()
        let median = try reader.readDouble()
        let students = try reader.readLength(limit: Int.max)
        let results = try reader.readLength(limit: Int.max)
        let latest = try readOptionalTime(&reader)
        let mastered = try OutcomeMessages.readBool(&reader)
        let ratingIndex = try reader.readLength(limit: scale.ratings.count)
        var counts: [Int] = []
        counts.reserveCapacity(scale.ratings.count)
        for _ in scale.ratings { counts.append(try reader.readLength(limit: Int.max)) }
        return ContextOutcomeAggregate(
            outcomeID: outcome, context: context, mean: mean, median: median, studentCount: students, resultCount: results,
            latestAssessedAt: latest, mastered: mastered, rating: ratingIndex == 0 ? nil : scale.ratings[ratingIndex - 1],
            ratingCounts: counts, scale: scale)
    }

    /// OUTCOME_AGGREGATES response: `varint count`, the aggregates by outcome id.
    public static func encodeAggregatesResponse(_ aggregates: [ContextOutcomeAggregate], into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(aggregates.count))
        for aggregate in aggregates { writeAggregate(aggregate, into: &writer) }
    }

    public static func decodeAggregatesResponse(from reader: inout ByteReader, context: ContextRef) throws(DecodeError) -> [ContextOutcomeAggregate] {
        let count = try reader.readLength(limit: OutcomeMessages.maximumListCount)
        var aggregates: [ContextOutcomeAggregate] = []
        aggregates.reserveCapacity(min(count, 4096))
        for _ in 0..<count { aggregates.append(try readAggregate(&reader, context: context)) }
        try reader.expectEnd()
        return aggregates
    }
}
