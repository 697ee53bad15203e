import LearnStoreModel

/// Bits flipped in files between two process lives (a damaged disk block). Recovery must either start
/// with every acknowledged write (the usual checks) or refuse with an error that names a damaged file;
/// it must never start with wrong data. A refusal ends the run as detected corruption.
extension DurabilitySimulation {
    /// Flips one bit of a WAL segment (in its written part, or just past it) or of a snapshot.
    mutating func flipBit() throws {
        let walFiles = try directory.segments(fs).map(directory.segmentPath)
        let snapshotFiles = fs.paths.filter { $0.hasPrefix(directory.path + "/") && $0.hasSuffix(".lss") }
        let inWAL = snapshotFiles.isEmpty || (!walFiles.isEmpty && random.chance(600_000))
        let files = inWAL ? walFiles : snapshotFiles
        guard !files.isEmpty else { return }
        let path = files[random.next(below: files.count)]
        let bytes = try fs.readWholeFile(path)
        guard !bytes.isEmpty else { return }
        let written = inWAL ? bytes.withUnsafeBytes { WALSegmentScanner.lastNonZero($0, from: 0) } : bytes.count
        let offset = random.next(below: min(bytes.count, written + 64))
        let bit = random.next(below: 8)
        if inWAL, let tail = try newestWrite(), tail.path == path, offset >= tail.start {
            // Recovery cannot tell this from a write a crash cut short (docs/STORAGE-FORMAT.md,
            // recovery step 3): the newest write may be discarded, acknowledged or not.
            tailLossAbove = tail.lsnBefore
        }
        fs.flipBit(path, offset: offset, bit: bit)
        flippedFiles.insert(path)
        result.bitFlips += 1
        note("flipped bit \(bit) of byte \(offset) of \(path)\(tailLossAbove.map { " (the newest write, above LSN \($0))" } ?? "")")
    }

    /// Where the newest group-commit write of the log starts (after the last-but-one commit marker
    /// of the newest segment holding records), and the LSN the writes before it reach.
    func newestWrite() throws -> (path: String, start: Int, lsnBefore: UInt64)? {
        for first in try directory.segments(fs).reversed() {
            let path = directory.segmentPath(first)
            let bytes = try fs.readWholeFile(path)
            let found: (Int, UInt64)? = bytes.withUnsafeBytes { raw in
                guard WALSegmentScanner.lastNonZero(raw, from: WALSegmentHeader.size) > WALSegmentHeader.size,
                    let header = try? WALSegmentHeader.decode(raw)
                else { return nil }
                var offset = WALSegmentHeader.size
                var floor = header.firstLSN == 0 ? 0 : header.firstLSN - 1
                // The ends of the last two commit markers: the newest complete write starts at the first.
                var lastTwo = [(offset, floor), (offset, floor)]
                scan: while true {
                    switch WALSegmentScanner.examine(raw, at: offset, after: floor) {
                    case .record(let record, let length):
                        floor = record.lsn
                        offset += length
                    case .skipped(let lsn, let length):
                        floor = lsn
                        offset += length
                    case .marker(let length):
                        offset += length
                        lastTwo = [lastTwo[1], (offset, floor)]
                    case .end, .damaged, .cutShort:
                        break scan
                    }
                }
                return lastTwo[0]
            }
            if let (start, lsnBefore) = found { return (path, start, lsnBefore) }
        }
        return nil
    }

    /// Recovery refused to start. After a flip that is the documented answer to damage, provided the
    /// error names a damaged file; the run ends there. Without a flip it is a failure (the caller's).
    func refusedBecauseOfFlippedBit(_ error: any Error) throws {
        guard !flippedFiles.isEmpty else { return }
        let description = "\(error)"
        guard flippedFiles.contains(where: description.contains) else {
            throw SimulationFailure("recovery refused to start after bits flipped in \(flippedFiles.sorted()) without naming one of them: \(description)")
        }
        throw DetectedCorruption(message: description)
    }
}
