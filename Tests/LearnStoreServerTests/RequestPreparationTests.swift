import CanvasOutcomes
import Dispatch
import LearnStoreEngine
import LearnStoreModel
import LearnStoreProtocol
import NIOCore
import Testing
@testable import LearnStoreServer

/// Payloads parsed before the tenant's lock: which frames get one, what it holds, and that the
/// executor answers from it.
@Suite struct RequestPreparationTests {
    static let event = #"{"metadata":{"event_name":"learning_outcome_result_created"},"body":{"learning_outcome_id":"1","user_uuid":"u1","score":3}}"#

    static func frame(_ opcode: UInt8, _ payload: (inout ByteWriter) -> Void = { _ in }) -> Frame {
        var writer = ByteWriter()
        payload(&writer)
        return Frame(header: FrameHeader(opcode: opcode, requestID: 1), payload: ByteBuffer(bytes: writer.bytes))
    }

    @Test func onlyIngestsAndImportsArePreparedAndEachEventKeepsItsVerdict() throws {
        let frames = [
            Self.frame(Opcode.get) { $0.writeRecordID(RecordID(high: 1, low: 1)) },
            Self.frame(Opcode.outcomeIngest) { OutcomeMessages.encodeIngest([Array(Self.event.utf8), Array("not json".utf8)], into: &$0) },
            Self.frame(Opcode.adminImport) { $0.writeU8(7) },
        ]
        let prepared = try #require(RequestPreparation.prepare(frames, limits: EngineLimits(), features: [.outcomes, .admin]))
        #expect(prepared[0] == nil)
        guard case .outcomeEvents(let events) = prepared[1] else {
            Issue.record("the ingest was not prepared: \(String(describing: prepared[1]))")
            return
        }
        #expect(events.count == 2)
        #expect((try? events[0].get())?.name == .learningOutcomeResultCreated)
        #expect((try? events[1].get()) == nil)
        guard case .refused(let error) = prepared[2] else {
            Issue.record("a malformed import was not refused: \(String(describing: prepared[2]))")
            return
        }
        #expect(error.code == .badFrame)
        #expect(RequestPreparation.prepare([frames[0]], limits: EngineLimits(), features: [.outcomes, .admin]) == nil)
        #expect(RequestPreparation.prepare(frames, limits: EngineLimits(), features: []) == nil, "opcodes of features the server does not offer stay unknown")
    }

    @Test func theExecutorAnswersAnIngestFromItsPreparedEvents() throws {
        let home = DispatchQueue(label: "tenant-home")
        let tenant = TenantActor(state: TenantState(tenantID: "acme"), log: DiscardingLog(), executor: TenantExecutor { home.async(execute: $0) })
        let session = Session(
            identity: CallerIdentity(tenantID: "acme", appID: nil, personID: UUID16(high: 1, low: 1), scopes: [.outcomesRead, .outcomesWrite]),
            expiresAt: .maximum, acceptedUntil: .maximum, protocolVersion: 1)
        let environment = ExecutionEnvironment(
            runtime: ServerRuntimeState(loading: false), clock: SystemClock(), limits: EngineLimits(), features: [.outcomes], info: { _ in "{}" })
        // The frame carries one event; the prepared payload says it was rejected: the answer follows the payload.
        let frame = Self.frame(Opcode.outcomeIngest) { OutcomeMessages.encodeIngest([Array(Self.event.utf8)], into: &$0) }
        let rejected: [Result<OutcomeEvent, OutcomeEventError>] = [TenantState.parseEvent(Array("{}".utf8))]
        let result = tenant.withExclusiveAccess { tenant in
            RequestExecutor.execute([frame], prepared: [0: .outcomeEvents(rejected)], session: session, tenant: tenant, environment: environment)
        }
        #expect(result.responses.count == 1 && result.errors.isEmpty)
        #expect(tenant.withExclusiveAccess { $0.state.sequence } == 0, "nothing was applied: the answer came from the prepared rejection")
    }
}
