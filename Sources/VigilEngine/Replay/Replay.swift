import Foundation
import Synchronization
import VigilCore
import VigilModels

/// `vigil replay`: the pipeline of `vigil run`, fed from a JSON-lines file instead of Kafka and
/// writing to files, so what is evaluated offline is exactly what runs online.
///
/// Each line is one record; line `n` (from 0) plays the record at offset `n` of partition 0 of
/// the topology's first source topic, so alert ids equal those `vigil run` gives the same
/// events on a one-partition topic. Labels (from `labels`) are delivered once the events read so
/// far have reached the label's time (its event-time field): each worker applies a label right
/// after the first record (in input order) whose event time reached it, between its own events,
/// so a label is never held back by the size of a chunk.
public struct Replay {
    public var topology: Topology
    public var input: String
    public var scores: String?
    public var alerts: String?
    public var labels: String?
    public var deadLetters: String?
    public var workers: Int = 2
    /// Lines per chunk handed to the workers.
    public var chunkLines = 4096
    /// Called now and then with the bytes read so far and the input's size.
    public var progress: (@Sendable (Int, Int) -> Void)?
    /// Sees every finished chunk in input order, on the writer's thread (what `evaluate` reads
    /// scores, alerts and outcomes from).
    public var observer: (@Sendable (InputChunk) -> Void)?
    /// Records every finished chunk as `vigil run` records it for `/metrics` (nil: nothing is
    /// recorded).
    public var metrics: EngineMetrics?

    /// What a replay gives besides its files: the summary, the SHA-256 of its score lines and of
    /// its alert lines (what a manifest records and `--verify` compares), and the time it took.
    public struct Outcome: Sendable {
        public var summary: Pipeline.Summary
        public var scoresSHA256: String
        public var alertsSHA256: String
        public var elapsed: Duration
    }

    public init(topology: Topology, input: String) {
        self.topology = topology
        self.input = input
    }

    /// Runs the whole input through the pipeline.
    /// - Throws: `VigilError` for files that cannot be read or written.
    public func run() throws(VigilError) -> Pipeline.Summary { try replay(digests: false).summary }

    /// Runs the whole input through the pipeline, hashing the score and alert lines as they are
    /// written.
    /// - Throws: `VigilError` for files that cannot be read or written.
    public func recorded() throws(VigilError) -> Outcome { try replay(digests: true) }

    private func replay(digests: Bool) throws(VigilError) -> Outcome {
        let started = ContinuousClock.now
        // Everything that can be refused is checked before any output file is created.
        guard let file = fopen(input, "rb") else {
            throw VigilError(.ioFailed, "cannot open \(input): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        let pending = try loadLabels()
        var observer = self.observer
        if let metrics {
            observer = { [observer] chunk in
                metrics.record(chunk)
                observer?(chunk)
            }
        }
        let writer = try ReplayWriter(
            scores: scores, alerts: alerts, deadLetters: deadLetters, topology: topology, digests: digests,
            observer: observer)
        let pipeline = try Pipeline(topology: topology, workers: workers, sink: writer)
        var nextLabel = 0
        var info = stat()
        let size = fstat(fileno(file), &info) == 0 ? Int(info.st_size) : 0
        pipeline.start()
        writer.start()
        let topic = topology.source.kafka.topics[0]
        var lineNumber: Int64 = 0
        var carry: [UInt8] = []
        var block = [UInt8](repeating: 0, count: 1 << 22)
        var bytesRead = 0
        var newestTime = Int64.min
        var lastProgress = ContinuousClock.now
        while true {
            let n = block.withUnsafeMutableBytes { fread($0.baseAddress!, 1, $0.count, file) }
            bytesRead += n
            var data = carry
            data.append(contentsOf: block[0..<n])
            carry.removeAll()
            // Whole lines only; the tail waits for the next block (or ends the file).
            var end = data.count
            if n > 0 {
                guard let lastNewline = data.lastIndex(of: 0x0A) else {
                    carry = data
                    continue
                }
                end = lastNewline + 1
                carry = Array(data[end...])
            }
            var lines: [Range<Int>] = []
            var start = 0
            for k in 0..<end where data[k] == 0x0A {
                lines.append(start..<k)
                start = k + 1
            }
            if start < end { lines.append(start..<end) }
            // A trailing empty line is not a record; a blank line inside the file is (and dead-letters).
            if n == 0, let last = lines.last, last.isEmpty { lines.removeLast() }
            let records = FileRecords(bytes: data, lines: lines)
            var first = 0
            while first < lines.count {
                let count = min(chunkLines, lines.count - first)
                let part = records.slice(first, count)
                let base = lineNumber
                pipeline.submit(
                    count: count, topics: [topic], raw: part,
                    position: { i in (0, 0, base + Int64(i), nil) }, arrivalMs: max(newestTime, 0),
                    labelsDue: { chunk in
                        var due: [(after: Int, record: LabelRecord)] = []
                        for i in 0..<chunk.count where chunk.outcome(i) != .deadLettered {
                            newestTime = max(newestTime, chunk.eventTime(i))
                            while nextLabel < pending.count, pending[nextLabel].time ?? .min <= newestTime {
                                due.append((i, pending[nextLabel].record))
                                nextLabel += 1
                            }
                        }
                        return due
                    })
                lineNumber += Int64(count)
                first += count
            }
            if let progress, ContinuousClock.now - lastProgress > .milliseconds(250) {
                progress(bytesRead, size)
                lastProgress = .now
            }
            if n == 0 { break }
        }
        if nextLabel < pending.count { pipeline.submitLabels(pending[nextLabel...].map(\.record)) }
        pipeline.finish()
        try writer.finish()
        progress?(bytesRead, size)
        let hashes = writer.digests
        return Outcome(
            summary: pipeline.summary(), scoresSHA256: hashes?.scores ?? "", alertsSHA256: hashes?.alerts ?? "",
            elapsed: .now - started)
    }

    /// Every label of the labels file, in time order (labels without a time come first).
    private func loadLabels() throws(VigilError) -> [LabelDecoder.Decoded] {
        guard let labels else { return [] }
        guard let source = topology.models.compactMap(\.kind.labels).first else {
            throw VigilError(
                .invalidArgument, "--labels given, but no model of topology \(topology.name) learns from labels")
        }
        let out = try LabelDecoder(source: source, timeField: topology.source.time?.field).decodeFile(labels)
        // Stable: equal times keep file order.
        return out.enumerated().sorted { ($0.element.time ?? .min, $0.offset) < ($1.element.time ?? .min, $1.offset) }
            .map(\.element)
    }
}

/// Lines of a file block as raw records.
struct FileRecords: RawRecords {
    let bytes: [UInt8]
    let lines: [Range<Int>]
    var first = 0
    var count: Int

    init(bytes: [UInt8], lines: [Range<Int>]) {
        self.bytes = bytes
        self.lines = lines
        count = lines.count
    }

    func slice(_ first: Int, _ count: Int) -> FileRecords {
        var s = self
        s.first = self.first + first
        s.count = count
        return s
    }

    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        bytes.withUnsafeBytes { all in body(UnsafeRawBufferPointer(rebasing: all[lines[first + i]])) }
    }

    func key(_ i: Int) -> [UInt8]? { nil }
}
