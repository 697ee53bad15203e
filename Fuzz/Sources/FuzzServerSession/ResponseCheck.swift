import FuzzSupport
import LearnStoreModel
import LearnStoreProtocol
import LearnStoreServer
import NIOCore

/// A response batch as a client reads it: one frame per request, in order, with its request id and
/// opcode; error bodies and the common payloads decode with the client's decoders.
enum ResponseCheck {
    static let decoder = FrameDecoder(maximumFrameBytes: 1 << 30)

    static func check(_ result: BatchResult, for requests: [Frame]) {
        guard result.responses.count == requests.count else { fuzzFailure("\(result.responses.count) responses to \(requests.count) requests") }
        var buffer = ByteBuffer(bytes: result.bytes)
        for request in requests {
            let response: Frame
            do {
                guard let next = try decoder.next(from: &buffer) else { fuzzFailure("the responses end before the one to request \(request.header.requestID)") }
                response = next
            } catch {
                fuzzFailure("the response bytes do not split into frames: \(error)")
            }
            guard response.header.requestID == request.header.requestID, response.header.opcode == request.header.opcode else {
                fuzzFailure("response \(response.header) answers request \(request.header)")
            }
            do {
                try checkPayload(response, request: request)
            } catch {
                fuzzFailure("the \(Opcode.name(request.header.opcode)) response\(response.header.isError ? " (error)" : "") does not decode: \(error)")
            }
        }
        guard buffer.readableBytes == 0 else { fuzzFailure("\(buffer.readableBytes) bytes after the last response") }
    }

    static func checkPayload(_ response: Frame, request: Frame) throws(DecodeError) {
        if response.header.isError {
            _ = try response.readPayload { (r) throws(DecodeError) in try ErrorBody.decode(from: &r) }
            return
        }
        switch request.header.opcode {
        case Opcode.get:
            _ = try response.readPayload { (r) throws(DecodeError) in try RecordCodec.decodeRecord(from: &r) }
        case Opcode.create:
            _ = try response.readPayload { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: true) }
        case Opcode.patch, Opcode.delete, Opcode.restore:
            _ = try response.readPayload { (r) throws(DecodeError) in try RecordMessages.decodeWriteResponse(from: &r, hasReplayed: false) }
        case Opcode.createBatch:
            _ = try response.readPayload { (r) throws(DecodeError) in try RecordMessages.decodeBatchResponse(from: &r) }
        case Opcode.list:
            _ = try response.readPayload { (r) throws(DecodeError) in try RecordMessages.decodeListResponse(from: &r) }
        case Opcode.outcomeIngest:
            _ = try response.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeIngestResponse(from: &r) }
        case Opcode.outcomeGet:
            let (kind, _) = try request.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeGet(from: &r) }
            _ = try response.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeGetResponse(kind, from: &r) }
        case Opcode.outcomeTree:
            _ = try response.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeEntities(from: &r) }
        case Opcode.outcomeResults:
            _ = try response.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeResultPage(from: &r) }
        case Opcode.outcomeProficiency:
            _ = try response.readPayload { (r) throws(DecodeError) in try OutcomeMessages.decodeProficiencyResponse(from: &r) }
        case Opcode.outcomeRollup:
            let query = try request.readPayload { (r) throws(DecodeError) in try RollupMessages.decodeRollup(from: &r) }
            _ = try response.readPayload { (r) throws(DecodeError) in
                try RollupMessages.decodeRollupResponse(from: &r, userUUID: query.userUUID, context: query.context)
            }
        case Opcode.outcomeStudentRollups:
            let query = try request.readPayload { (r) throws(DecodeError) in try RollupMessages.decodeStudentRollups(from: &r) }
            _ = try response.readPayload { (r) throws(DecodeError) in
                try RollupMessages.decodeRollupsResponse(from: &r, userUUID: query.userUUID, context: query.context)
            }
        case Opcode.outcomeAggregates:
            let query = try request.readPayload { (r) throws(DecodeError) in try RollupMessages.decodeAggregates(from: &r) }
            _ = try response.readPayload { (r) throws(DecodeError) in try RollupMessages.decodeAggregatesResponse(from: &r, context: query.context) }
        case Opcode.adminImport:
            _ = try response.readPayload { (r) throws(DecodeError) in try AdminMessages.decodeImportResponse(from: &r) }
        default:
            break
        }
    }
}
