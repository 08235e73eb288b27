import Foundation
import VigilCore
import VigilFeatures

/// One generated event, decoded from a single random word so that the property-based
/// shrinker, which shrinks words toward zero, shrinks streams toward simple ones.
struct TestEvent: CustomStringConvertible {
    var id: Int
    var entity: Int
    var time: Int64
    var amount: Double  // NaN: missing
    var merchant: Int
    var country: Int

    var description: String {
        "#\(id) e\(entity) t=\(time) amount=\(amount) m\(merchant) c\(country)"
    }

    static let entityKeys = ["card-a", "card-b", "card-c"]
    static let start: Int64 = 1_700_000_000_000

    /// Decodes words into events in *arrival* order: event i happens at the running sum of gaps,
    /// then arrives after a delay of up to `maxDelay` ms (so up to that far out of order).
    static func stream(_ words: [UInt64], maxDelay: Int64, maxGap: Int64 = 120_000) -> [TestEvent] {
        var time = start
        var timed: [(event: TestEvent, arrival: Int64)] = []
        for (i, v) in words.enumerated() {
            time += Int64((v >> 2) % UInt64(maxGap + 1))
            let missing = (v >> 60) & 7 == 7
            let event = TestEvent(
                id: i, entity: Int(v % 3), time: time,
                amount: missing ? .nan : Double((v >> 20) % 100_000) / 100,
                merchant: Int((v >> 40) % 6), country: Int((v >> 44) % 4))
            let delay = maxDelay == 0 ? 0 : Int64((v >> 48) % UInt64(maxDelay + 1))
            timed.append((event, time + delay))
        }
        // Stable sort keeps generation order among equal arrivals.
        return timed.enumerated().sorted { ($0.element.arrival, $0.offset) < ($1.element.arrival, $1.offset) }
            .map(\.element.event)
    }
}

/// The features every aggregation test uses: every kind and every aggregate.
enum TestTopology {
    static let fields = Schema(fields: [
        FieldSpec(name: "card", type: .string), FieldSpec(name: "ts", type: .timestamp),
        FieldSpec(name: "amount", type: .number, required: false), FieldSpec(name: "merchant", type: .string),
        FieldSpec(name: "country", type: .category),
    ])
    static let layout = EventLayout(schema: fields)

    static let features: [FeatureSpec] = {
        var f: [FeatureSpec] = [
            .init(name: "amount", kind: .value(field: "amount", transform: ValueTransform(clip: 0...900, log1p: true))),
            .init(
                name: "amount_bucket",
                kind: .value(field: "amount", transform: ValueTransform(bucketEdges: [10, 100, 500]))),
            .init(name: "count_10m", kind: .window(key: "card", length: .seconds(600), aggregate: .count, of: nil)),
            .init(name: "count_1h", kind: .window(key: "card", length: .seconds(3600), aggregate: .count, of: nil)),
        ]
        for agg in [WindowAggregate.sum, .mean, .variance, .std, .min, .max] {
            f.append(
                .init(
                    name: "\(agg)_10m", kind: .window(key: "card", length: .seconds(600), aggregate: agg, of: "amount"))
            )
        }
        f.append(
            .init(
                name: "merchants_10m",
                kind: .window(key: "card", length: .seconds(600), aggregate: .distinct, of: "merchant")))
        f.append(
            .init(name: "dcount_1h", kind: .decayed(key: "card", halflife: .seconds(3600), aggregate: .count, of: nil)))
        for agg in [DecayedAggregate.sum, .mean, .std] {
            f.append(
                .init(
                    name: "d\(agg)_1h",
                    kind: .decayed(key: "card", halflife: .seconds(3600), aggregate: agg, of: "amount")))
        }
        f += [
            .init(name: "z", kind: .zscore(key: "card", of: "amount", halflife: .seconds(1800))),
            .init(name: "since_last", kind: .timeSinceLast(key: "card")),
            .init(name: "new_country", kind: .novelty(key: "card", of: "country")),
            .init(name: "country_share", kind: .share(key: "card", of: "country", halflife: .seconds(1800))),
            .init(name: "sum_vs_count", kind: .ratio(numerator: "sum_10m", denominator: "count_10m")),
            .init(name: "country_bucket", kind: .category(field: "country", buckets: 16)),
        ]
        return f
    }()

    static func batch(_ events: [TestEvent]) -> EventBatch {
        var batch = EventBatch(layout: layout, capacity: events.count)
        for e in events {
            batch.append(
                key: StableHash.hash(TestEvent.entityKeys[e.entity]), time: e.time, numbers: [e.amount],
                categories: [
                    StableHash.category(TestEvent.entityKeys[e.entity]), StableHash.category("m\(e.merchant)"),
                    StableHash.category("c\(e.country)"),
                ])
        }
        return batch
    }

    static func extractor(lateness: Duration, reorder: Int, scoreLate: Bool = true, panes: Int = 8) throws
        -> FeatureExtractor
    {
        var state = StateSpec()
        state.reorderBuffer = reorder
        state.panes = panes
        let plan = try FeaturePlan(features: features, layout: layout, state: state)
        return FeatureExtractor(
            plan: plan, allowedLateness: lateness, scoreLate: scoreLate, idleTTL: .seconds(30 * 86_400),
            maxEntities: 1000, seed: 1)
    }
}

/// Brute-force reference: recomputes every feature of every event from the raw list of events
/// accepted so far, with no incremental state at all. Acceptance follows the documented rule
/// (lateness behind the entity's newest event, plus the reorder buffer's fold horizon).
struct FeatureReference {
    let latenessMs: Int64
    let reorder: Int
    let panes: Int
    var accepted: [Int: [(arrival: Int, event: TestEvent)]] = [:]
    /// Per entity: unfolded event times (sorted) and the newest folded time.
    var unfolded: [Int: [Int64]] = [:]
    var folded: [Int: Int64] = [:]

    init(latenessMs: Int64, reorder: Int, panes: Int = 8) {
        self.latenessMs = latenessMs
        self.reorder = reorder
        self.panes = panes
    }

    /// Features of `e` (nil when late and rejected) and whether it was accepted.
    mutating func process(_ e: TestEvent, arrival: Int, scoreLate: Bool) -> (
        features: [String: Double]?, accepted: Bool
    ) {
        let history = accepted[e.entity] ?? []
        let newest = history.map(\.event.time).max()
        let foldedTime = folded[e.entity] ?? .min
        let isAccepted = newest == nil || (e.time >= newest! - latenessMs && e.time >= foldedTime)
        if !isAccepted {
            guard scoreLate else { return (nil, false) }
            var atNewest = e
            atNewest.time = newest!
            return (features(of: atNewest, visible: history.map(\.event)), false)
        }
        let visible = history.map(\.event).filter { $0.time <= e.time }
        let result = features(of: e, visible: visible)
        accepted[e.entity, default: []].append((arrival, e))
        // The reorder buffer: insert, then fold the oldest while too many or beyond lateness.
        var tail = unfolded[e.entity] ?? []
        tail.append(e.time)
        tail.sort()
        let top = max(newest ?? e.time, e.time)
        while let first = tail.first, tail.count > reorder || first < top - latenessMs {
            folded[e.entity] = first
            tail.removeFirst()
        }
        unfolded[e.entity] = tail
        return (result, true)
    }

    func pane(_ t: Int64, _ lengthMs: Int64) -> Int64 {
        let w = lengthMs / Int64(panes)
        return t >= 0 ? t / w : (t - w + 1) / w
    }

    func features(of e: TestEvent, visible: [TestEvent]) -> [String: Double] {
        let all = visible + [e]
        let t = e.time
        var f: [String: Double] = [:]
        func inWindow(_ lengthMs: Int64) -> [TestEvent] {
            all.filter { pane($0.time, lengthMs) > pane(t, lengthMs) - Int64(panes) }
        }
        let w10 = inWindow(600_000)
        let amounts = w10.map(\.amount).filter { !$0.isNaN }
        f["amount"] = e.amount.isNaN ? .nan : Foundation.log1p(min(900, max(0, e.amount)))
        f["amount_bucket"] = e.amount.isNaN ? .nan : Double([10.0, 100, 500].filter { e.amount >= $0 }.count)
        f["count_10m"] = Double(w10.count)
        f["count_1h"] = Double(inWindow(3_600_000).count)
        let n = Double(amounts.count)
        let sum = amounts.reduce(0, +)
        let mean = n > 0 ? sum / n : .nan
        let variance = n > 0 ? amounts.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n : .nan
        f["sum_10m"] = sum
        f["mean_10m"] = mean
        f["variance_10m"] = variance
        f["std_10m"] = variance.squareRoot()
        f["min_10m"] = amounts.min() ?? .nan
        f["max_10m"] = amounts.max() ?? .nan
        f["merchants_10m"] = Double(Set(w10.map(\.merchant)).count)
        func weight(_ x: TestEvent, _ halflifeMs: Double) -> Double { pow(2, -Double(t - x.time) / halflifeMs) }
        f["dcount_1h"] = all.map { weight($0, 3_600_000) }.reduce(0, +)
        let weighted = all.filter { !$0.amount.isNaN }.map { (w: weight($0, 3_600_000), x: $0.amount) }
        let dw = weighted.map(\.w).reduce(0, +)
        let dsum = weighted.map { $0.w * $0.x }.reduce(0, +)
        f["dsum_1h"] = dsum
        f["dmean_1h"] = dw > 0 ? dsum / dw : .nan
        f["dstd_1h"] =
            dw > 0
            ? (weighted.map { $0.w * ($0.x - dsum / dw) * ($0.x - dsum / dw) }.reduce(0, +) / dw).squareRoot() : .nan
        // z-score against the history only (not the event itself).
        let past = visible.filter { !$0.amount.isNaN }.map { (w: weight($0, 1_800_000), x: $0.amount) }
        let pw = past.map(\.w).reduce(0, +)
        if e.amount.isNaN {
            f["z"] = .nan
        } else if pw < 2 - 1e-9 {
            f["z"] = 0
        } else {
            let pm = past.map { $0.w * $0.x }.reduce(0, +) / pw
            let ps = (past.map { $0.w * ($0.x - pm) * ($0.x - pm) }.reduce(0, +) / pw).squareRoot()
            let tiny = 1e-6 * max(1, abs(pm))
            let z = ps > tiny ? (e.amount - pm) / ps : (abs(e.amount - pm) <= tiny ? 0 : (e.amount > pm ? 100 : -100))
            f["z"] = min(100, max(-100, z))
        }
        f["since_last"] = visible.map(\.time).max().map { Double(t - $0) / 1000 } ?? .nan
        f["new_country"] = visible.contains { $0.country == e.country } ? 0 : 1
        let shareTotal = visible.map { weight($0, 1_800_000) }.reduce(0, +)
        let shareMine = visible.filter { $0.country == e.country }.map { weight($0, 1_800_000) }.reduce(0, +)
        f["country_share"] = shareTotal > 0 ? shareMine / shareTotal : 0
        let count10 = f["count_10m"]!
        f["sum_vs_count"] = count10 == 0 ? .nan : sum / count10
        return f
    }
}
