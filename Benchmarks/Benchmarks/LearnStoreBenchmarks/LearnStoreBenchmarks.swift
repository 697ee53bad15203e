import Benchmark
import CanvasOutcomes
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import LearnStoreProtocol
import LearnStoreWorkload
import NIOCore
import Zstd

// Hot paths of LearnStore. Malloc counts are gated by checked-in thresholds (Thresholds/); wall-clock
// figures are recorded in docs/PERFORMANCE.md. Instructions are measured where the kernel allows
// perf events (not on every VM).

let metrics: [BenchmarkMetric] = [.wallClock, .mallocCountTotal, .instructions, .throughput]
let caller = CallerIdentity(tenantID: "tenant_00000", personID: UUID16(high: 9, low: 9),
                            scopes: [.recordsRead, .recordsWrite, .outcomesRead, .outcomesWrite, .admin])

/// A tenant loaded with `count` records of the peers' data set (in (created_at, id) order).
func loadedTenant(_ count: Int) -> (TenantState, [LearningRecord]) {
    let data = PeerDataset(records: count, tenants: 1)
    var records = (0..<count).map { data.record($0) }
    records.sort { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    var state = TenantState(tenantID: "tenant_00000")
    var start = 0
    while start < records.count {
        state.apply([.putRecords(Array(records[start..<min(records.count, start + 1000)]))], sequence: state.sequence + 1)
        start += 1000
    }
    // Build the secondary indexes now, as the first read or the idle tick would on a server.
    state.catchUpIndexes()
    return (state, records)
}

/// State that lives across samples: the framework calls a benchmark's closure once per sample, and
/// a fresh `var state = tenant` in the closure would measure the copy-on-write of the whole tenant.
final class StateBox: @unchecked Sendable {
    var state: TenantState
    var now = Timestamp(milliseconds: 1_900_000_000_000)
    init(_ state: TenantState) { self.state = state }
}

let benchmarks: @Sendable () -> Void = {
    // Malloc counts at p90 move by up to about ten between runs on this VM (seen on the patch and
    // snapshot benchmarks); a real regression is far larger (a missed index catch-up in the list
    // benchmark showed as +35 000).
    let tolerance: [BenchmarkMetric: BenchmarkThresholds] = [.mallocCountTotal: BenchmarkThresholds(absolute: [.p90: 12])]
    let configuration = Benchmark.Configuration(metrics: metrics, warmupIterations: 3, maxDuration: .seconds(2), maxIterations: 1_000,
                                                thresholds: tolerance)

    // MARK: protocol

    Benchmark("FrameDecode1000GetFrames", configuration: configuration) { benchmark in
        var writer = ByteWriter()
        for i in 0..<1000 {
            writer.writeFrame(FrameHeader(opcode: Opcode.get, requestID: UInt32(i))) { $0.writeRecordID(RecordID(high: UInt64(i), low: 1)) }
        }
        let bytes = writer.bytes
        let decoder = FrameDecoder()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var buffer = ByteBuffer(bytes: bytes)
            var count = 0
            while let frame = try? decoder.next(from: &buffer) {
                count += 1
                blackHole(frame.header.requestID)
            }
            precondition(count == 1000)
        }
    }

    let (tenant, records) = loadedTenant(100_000)

    Benchmark("RecordCodecEncodeDecode", configuration: configuration) { benchmark in
        let record = records[1234]
        for _ in benchmark.scaledIterations {
            var writer = ByteWriter(capacity: 256)
            RecordCodec.encode(record, into: &writer)
            blackHole(try? RecordCodec.decodeRecord(writer.bytes))
        }
    }

    // MARK: engine (a 100k-record tenant)

    Benchmark("EngineGet1000From100kTenant", configuration: configuration) { benchmark in
        var writer = ByteWriter(capacity: 64 << 10)
        var index = 0
        for _ in benchmark.scaledIterations {
            writer.reset()
            for _ in 0..<1000 {
                index = (index &+ 7919) % records.count
                let slot = try! tenant.visibleSlot(records[index].id, caller: caller)
                tenant.store.encode(slot: slot, into: &writer)
            }
            blackHole(writer.count)
        }
    }

    Benchmark("EngineListByPerson100kTenant", configuration: configuration) { benchmark in
        // `list` is mutating (it may first catch the indexes up); this tenant has nothing to catch
        // up, so the copy is never written and costs only its page references.
        var reader = tenant
        var index = 0
        for _ in benchmark.scaledIterations {
            index = (index &+ 7919) % records.count
            let page = try! reader.list(ListQuery(personID: records[index].personID), caller: caller)
            blackHole(page.slots.count)
        }
    }

    let writes = StateBox(loadedTenant(100_000).0)
    let body = RecordBody(personID: UUID16(high: 77, low: 1), title: "AWS Certified Solutions Architect - Associate", provider: "AWS",
                          completedAt: Timestamp(milliseconds: 1_700_000_000_000), score: 88, passed: true, certificationRef: "CRED-AWS-X")
    Benchmark("EngineCreate100kTenant", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            writes.now.milliseconds += 1
            blackHole(try! writes.state.create(body, caller: caller, now: writes.now).sequence)
            // A create leaves its record out of the secondary indexes until something reads them;
            // catching up here keeps this the cost of a fully indexed create, as a mixed load pays it.
            writes.state.catchUpIndexes()
        }
    }

    var patchIndex = 0
    Benchmark("IndexMaintenancePatchMovingPersonAndProvider", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            patchIndex = (patchIndex &+ 7919) % records.count
            var patch = RecordBody()
            patch.personID = .value(UUID16(high: 5, low: UInt64(patchIndex)))
            patch.provider = .value(patchIndex % 2 == 0 ? "edX" : "AWS")
            writes.now.milliseconds += 1
            blackHole(try! writes.state.patch(records[patchIndex].id, patch, caller: caller, now: writes.now).sequence)
        }
    }

    // MARK: persistence

    Benchmark("WALRecordEncodeSeal", configuration: configuration) { benchmark in
        let entry = LogEntry(tenantID: "tenant_00000", sequence: 1, timestamp: Timestamp(milliseconds: 1), mutations: [.putRecords([records[7]])])
        for _ in benchmark.scaledIterations {
            var bytes = WALRecord.encodeUnsequenced(entry)
            WALRecord.seal(&bytes, lsn: 42)
            blackHole(bytes.count)
        }
    }

    // The longest write pause a snapshot causes: capture, then the first write (it copies the touched
    // record page and the outer page list, never the tenant).
    Benchmark("SnapshotCaptureThenFirstWrite100kTenant", configuration: configuration) { benchmark in
        var patch = RecordBody()
        patch.score = .value(1)
        for _ in benchmark.scaledIterations {
            let capture = writes.state.capture()
            writes.now.milliseconds += 1
            blackHole(try! writes.state.patch(records[500].id, patch, caller: caller, now: writes.now).sequence)
            blackHole(capture.sequence)
        }
    }

    Benchmark("SnapshotSerializeZstd100kTenant",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .throughput], warmupIterations: 1, maxDuration: .seconds(5), maxIterations: 20)) { benchmark in
        let capture = tenant.capture()
        for _ in benchmark.scaledIterations {
            var compressed = 0
            SnapshotStream.encode(capture) { chunk in compressed += (try? Zstd.compress(chunk, level: 1).count) ?? 0 }
            blackHole(compressed)
        }
    }

    // MARK: rollups

    var outcomes = OutcomeStore()
    let course = CanvasCourseDataset(students: 40, outcomes: 100, resultsPerOutcome: 5)
    for event in course.events { _ = outcomes.apply(event) }
    let student = course.students[3]
    Benchmark("RollupOneStudent100Outcomes", configuration: configuration) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(outcomes.studentRollups(userUUID: student, context: course.context, options: RollupOptions()).count)
        }
    }

    // MARK: memory

    Benchmark("BytesPerRecordEngineEstimate",
              configuration: .init(metrics: [.custom("bytes per record", polarity: .prefersSmaller, useScalingFactor: false)],
                                   maxIterations: 1)) { benchmark in
        let stats = tenant.stats
        benchmark.measurement(.custom("bytes per record", polarity: .prefersSmaller, useScalingFactor: false),
                              stats.estimatedBytes / max(1, stats.liveRecords))
    }
}
