import FuzzSupport
import LearnStoreEngine
import LearnStoreModel
import LearnStorePersistence
import Synchronization

/// A mutation log that commits at once and checks that each entry survives the WAL record codec
/// (what the server writes, recovery must read back identically). It keeps the entries for replay.
final class CheckingLog: MutationLog {
    private let state = Mutex<(lsn: UInt64, entries: [LogEntry])>((0, []))

    func append(_ entry: LogEntry) throws(LearnStoreError) -> UInt64 {
        let lsn = state.withLock { $0.lsn + 1 }
        WALCheck.roundTrip(WALRecord(lsn: lsn, entry: entry))
        state.withLock {
            $0.lsn = lsn
            $0.entries.append(entry)
        }
        return lsn
    }

    var committedLSN: UInt64 { state.withLock { $0.lsn } }
    var entries: [LogEntry] { state.withLock { $0.entries } }
}
