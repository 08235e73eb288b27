import VigilCore
import VigilFeatures
import VigilModels

/// The labelled fixture every model is checked on: the synthetic card-payment stream turned into
/// feature rows by the real feature stage, in stream order, with each row's label.
enum ModelFixture {
    static let numericFeatures = [
        "amount", "count_10m", "sum_1h", "mean_1d", "amount_z", "merchants_1h", "new_country", "new_merchant",
        "since_last", "amount_vs_day",
    ]

    static let features: [FeatureSpec] = [
        .init(name: "amount", kind: .value(field: "amount", transform: ValueTransform(clip: 0...100_000, log1p: true))),
        .init(name: "count_10m", kind: .window(key: "card_id", length: .seconds(600), aggregate: .count, of: nil)),
        .init(name: "sum_1h", kind: .window(key: "card_id", length: .seconds(3600), aggregate: .sum, of: "amount")),
        .init(name: "mean_1d", kind: .window(key: "card_id", length: .seconds(86_400), aggregate: .mean, of: "amount")),
        .init(name: "amount_z", kind: .zscore(key: "card_id", of: "amount", halflife: .seconds(7 * 86_400))),
        .init(name: "merchants_1h", kind: .window(key: "card_id", length: .seconds(3600), aggregate: .distinct, of: "merchant_id")),
        .init(name: "new_country", kind: .novelty(key: "card_id", of: "country")),
        .init(name: "new_merchant", kind: .novelty(key: "card_id", of: "merchant_id")),
        .init(name: "since_last", kind: .timeSinceLast(key: "card_id")),
        .init(name: "amount_vs_day", kind: .ratio(numerator: "amount", denominator: "mean_1d")),
        .init(name: "channel", kind: .category(field: "channel", buckets: 8)),
    ]

    static let schema = Schema(fields: [
        FieldSpec(name: "card_id", type: .string), FieldSpec(name: "ts", type: .timestamp),
        FieldSpec(name: "amount", type: .number), FieldSpec(name: "merchant_id", type: .string),
        FieldSpec(name: "country", type: .category), FieldSpec(name: "channel", type: .category),
    ])

    struct Data {
        var matrix: FeatureMatrix
        var labels: [Bool]
        var patterns: [TransactionStream.Pattern]
    }

    /// `events` transactions (seeded) as one matrix.
    static func make(events: Int = 30_000, seed: UInt64 = 11) -> Data {
        var config = TransactionStream.Config()
        config.events = events
        config.seed = seed
        config.cards = 3_000
        config.fraudEpisodeRate = 0.004
        let layout = EventLayout(schema: schema)
        let plan = try! FeaturePlan(features: features, layout: layout)
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: .seconds(30), idleTTL: .seconds(30 * 86_400), maxEntities: 100_000)
        var all = extractor.makeMatrix()
        var allValues: [Double] = []
        var allBuckets: [UInt32] = []
        var labels: [Bool] = []
        var patterns: [TransactionStream.Pattern] = []
        var batch = EventBatch(layout: layout, capacity: 1000)
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        func flush() {
            extractor.process(batch, into: &matrix, outcomes: &outcomes)
            allValues += matrix.values
            allBuckets += matrix.buckets
            batch.removeAll()
        }
        for t in TransactionStream(config) {
            let key = StableHash.hash(t.card)
            batch.append(
                key: key, time: t.time, numbers: [t.amount],
                categories: [
                    key, StableHash.category(t.merchantId), StableHash.category(t.country), StableHash.category(t.channel),
                ])
            labels.append(t.isFraud)
            patterns.append(t.pattern)
            if batch.count == 1000 { flush() }
        }
        if batch.count > 0 { flush() }
        all.reset(rows: labels.count)
        all.values = allValues
        all.buckets = allBuckets
        return Data(matrix: all, labels: labels, patterns: patterns)
    }

    static let shared = make()

    /// The same rows with the columns in another order (and the categorical columns reversed).
    static func permuted(_ m: FeatureMatrix, seed: UInt64) -> FeatureMatrix {
        var rng = SeededRandom(seed: seed)
        let order = m.names.indices.shuffled(using: &rng)
        let catOrder = Array(m.categoryNames.indices.reversed())
        var out = FeatureMatrix(
            names: order.map { m.names[$0] }, categoryNames: catOrder.map { m.categoryNames[$0] },
            categoryBuckets: catOrder.map { m.categoryBuckets[$0] })
        out.reset(rows: m.rows)
        for r in 0..<m.rows {
            for (c, source) in order.enumerated() { out.values[r * order.count + c] = m.values[r * m.names.count + source] }
            for (c, source) in catOrder.enumerated() {
                out.buckets[r * catOrder.count + c] = m.buckets[r * m.categoryNames.count + source]
            }
        }
        return out
    }

    /// Drops column `drop` and adds an unknown column `extra` full of 7s.
    static func reshaped(_ m: FeatureMatrix, drop: String, extra: String) -> FeatureMatrix {
        let kept = m.names.indices.filter { m.names[$0] != drop }
        var out = FeatureMatrix(names: kept.map { m.names[$0] } + [extra], categoryNames: [], categoryBuckets: [])
        out.reset(rows: m.rows)
        for r in 0..<m.rows {
            for (c, source) in kept.enumerated() { out.values[r * (kept.count + 1) + c] = m.values[r * m.names.count + source] }
            out.values[r * (kept.count + 1) + kept.count] = 7
        }
        return out
    }
}
