import VigilCore

/// Quality measured the prequential way (test, then train): every labelled event was scored
/// before its label was known. The window holds the most recent labelled events. It reports
/// ROC-AUC and average precision of the scores, and precision, recall and F1 of the alerts
/// actually raised at the live threshold.
public struct PrequentialMetrics: Sendable {
    /// Labelled events kept.
    public let window: Int
    private var entries: [(score: Double, label: Bool, alerted: Bool)] = []
    private var next = 0
    /// Labelled events seen in all.
    public private(set) var total = 0

    public init(window: Int = 10_000) {
        precondition(window >= 1)
        self.window = window
        entries.reserveCapacity(Swift.min(window, 65_536))
    }

    /// Records one labelled event: its score, its label, and whether it raised an alert.
    public mutating func add(score: Double, label: Bool, alerted: Bool) {
        total += 1
        if entries.count < window {
            entries.append((score, label, alerted))
        } else {
            entries[next] = (score, label, alerted)
            next = (next + 1) % window
        }
    }

    /// Calls `body` with every labelled event in the window (score, label, alerted), oldest first.
    public func forEachEntry(_ body: (Double, Bool, Bool) -> Void) {
        let n = entries.count
        for k in 0..<n {
            let e = entries[(n < window ? k : (next + k) % n)]
            body(e.score, e.label, e.alerted)
        }
    }

    /// The metrics over the window; nil members where undefined (no positives, no alerts).
    public struct Report: Sendable, Equatable {
        public var events: Int
        public var positives: Int
        public var rocAUC: Double?
        public var averagePrecision: Double?
        public var precision: Double?
        public var recall: Double?
        public var f1: Double?
    }

    public func report() -> Report {
        Self.report(scores: entries.map(\.score), labels: entries.map(\.label), alerted: entries.map(\.alerted))
    }

    /// The entries of labelled events number `start` to `start + count - 1` (counting every
    /// labelled event ever added from 0), as far as the window still holds them; oldest first.
    public func entries(from start: Int, count: Int) -> (scores: [Double], labels: [Bool], alerted: [Bool]) {
        var out: (scores: [Double], labels: [Bool], alerted: [Bool]) = ([], [], [])
        var k = total - entries.count  // the label number of the oldest entry held
        forEachEntry { score, label, alerted in
            defer { k += 1 }
            guard k >= start, k < start + count else { return }
            out.scores.append(score)
            out.labels.append(label)
            out.alerted.append(alerted)
        }
        return out
    }

    /// The metrics of a set of labelled events: their scores, labels and whether each alerted.
    public static func report(scores: [Double], labels: [Bool], alerted: [Bool]) -> Report {
        precondition(scores.count == labels.count && labels.count == alerted.count)
        let positives = labels.filter { $0 }.count
        let alerts = alerted.filter { $0 }.count
        let hits = zip(alerted, labels).filter { $0 && $1 }.count
        let precision = alerts > 0 ? Double(hits) / Double(alerts) : nil
        let recall = positives > 0 ? Double(hits) / Double(positives) : nil
        var f1: Double?
        if let p = precision, let r = recall { f1 = p + r > 0 ? 2 * p * r / (p + r) : 0 }
        return Report(
            events: scores.count, positives: positives, rocAUC: RankingMetrics.rocAUC(scores: scores, labels: labels),
            averagePrecision: RankingMetrics.averagePrecision(scores: scores, labels: labels), precision: precision,
            recall: recall, f1: f1)
    }
}

extension PrequentialMetrics {
    /// Appends the window (oldest first, as a column of scores and one of flags) and the running
    /// total, so quality survives a restart.
    public func encode(into out: inout BinaryWriter) {
        out.write(UInt8(1))  // body version
        out.write(total)
        out.write(UInt64(entries.count))
        var scores: [Double] = []
        var flags: [UInt8] = []
        scores.reserveCapacity(entries.count)
        flags.reserveCapacity(entries.count)
        forEachEntry { score, label, alerted in
            scores.append(score)
            flags.append((label ? 1 : 0) | (alerted ? 2 : 0))
        }
        scores.withUnsafeBufferPointer { out.write(contentsOf: $0) }
        flags.withUnsafeBufferPointer { out.write(contentsOf: $0) }
    }

    /// Metrics over a window of `window` events holding what `encode` wrote (its newest
    /// `window` events, when the window shrank).
    public init(window: Int, decoding input: inout BinaryReader) throws(CheckpointError) {
        self.init(window: window)
        let version = try input.checkpoint { r throws(VigilError) in try r.uint8() }
        guard version == 1 else { throw CheckpointError(.newerVersion, "metrics body version \(version)") }
        let total = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...Int.max, "labelled events") }
        let n = try input.checkpoint { r throws(VigilError) in try r.int(in: 0...total, "window entries") }
        guard input.remaining >= 9 * n else { throw CheckpointError(.truncated, "metrics window cut short") }
        let scores = try input.checkpoint { r throws(VigilError) in try r.values(n, of: Double.self) }
        let flags = try input.checkpoint { r throws(VigilError) in try r.values(n, of: UInt8.self) }
        for i in 0..<n { add(score: scores[i], label: flags[i] & 1 != 0, alerted: flags[i] & 2 != 0) }
        self.total = total
    }
}
