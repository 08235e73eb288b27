import VigilCore
import VigilFeatures
import VigilModels
import VigilSynthetic

/// The labelled fixture every model is checked on: the synthetic card-payment stream turned into
/// feature rows by the real feature stage, in stream order, with each row's label.
enum ModelFixture {
    static let numericFeatures = TransactionStream.cardFeatures.map(\.name)

    struct Data {
        var matrix: FeatureMatrix
        var labels: [Bool]
        var patterns: [TransactionStream.Pattern]
    }

    /// `events` transactions (seeded) as one matrix, with a hashed channel column as well.
    static func make(events: Int = 30_000, seed: UInt64 = 11) -> Data {
        var config = TransactionStream.Config()
        config.events = events
        config.seed = seed
        config.cards = 3_000
        config.fraudEpisodeRate = 0.004
        let features =
            TransactionStream.cardFeatures + [.init(name: "channel", kind: .category(field: "channel", buckets: 8))]
        let rows = try! TransactionStream.featureRows(config, features: features)
        return Data(matrix: rows.matrix, labels: rows.labels, patterns: rows.patterns)
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
            for (c, source) in order.enumerated() {
                out.values[r * order.count + c] = m.values[r * m.names.count + source]
            }
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
            for (c, source) in kept.enumerated() {
                out.values[r * (kept.count + 1) + c] = m.values[r * m.names.count + source]
            }
            out.values[r * (kept.count + 1) + kept.count] = 7
        }
        return out
    }
}
