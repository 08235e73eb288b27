import VigilCore
import VigilFeatures

extension TransactionStream {
    /// The card-payment features of `topologies/card-payments.yaml` (without the hashed
    /// category), for fixtures and benchmarks that turn the stream into feature rows.
    public static let cardFeatures: [FeatureSpec] = [
        .init(name: "amount", kind: .value(field: "amount", transform: ValueTransform(clip: 0...100_000, log1p: true))),
        .init(name: "count_10m", kind: .window(key: "card_id", length: .seconds(600), aggregate: .count, of: nil)),
        .init(name: "sum_1h", kind: .window(key: "card_id", length: .seconds(3600), aggregate: .sum, of: "amount")),
        .init(name: "mean_1d", kind: .window(key: "card_id", length: .seconds(86_400), aggregate: .mean, of: "amount")),
        .init(name: "amount_z", kind: .zscore(key: "card_id", of: "amount", halflife: .seconds(7 * 86_400))),
        .init(
            name: "merchants_1h",
            kind: .window(key: "card_id", length: .seconds(3600), aggregate: .distinct, of: "merchant_id")),
        .init(name: "new_country", kind: .novelty(key: "card_id", of: "country")),
        .init(name: "new_merchant", kind: .novelty(key: "card_id", of: "merchant_id")),
        .init(name: "since_last", kind: .timeSinceLast(key: "card_id")),
        .init(name: "amount_vs_day", kind: .ratio(numerator: "amount", denominator: "mean_1d", raw: true)),
    ]

    /// The fields the stream fills, as a topology would declare them.
    public static let schema = Schema(fields: [
        FieldSpec(name: "card_id", type: .string), FieldSpec(name: "ts", type: .timestamp),
        FieldSpec(name: "amount", type: .number), FieldSpec(name: "merchant_id", type: .string),
        FieldSpec(name: "merchant_category", type: .category), FieldSpec(name: "country", type: .category),
        FieldSpec(name: "channel", type: .category),
    ])

    /// The whole stream through the feature stage: one matrix row per transaction, in stream
    /// order, with each transaction's label and pattern.
    public static func featureRows(
        _ config: Config, features: [FeatureSpec] = cardFeatures
    ) throws(VigilError) -> (matrix: FeatureMatrix, labels: [Bool], patterns: [Pattern]) {
        let layout = EventLayout(schema: schema)
        let plan = try FeaturePlan(features: features, layout: layout)
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: .seconds(30), idleTTL: .seconds(30 * 86_400),
            maxEntities: Swift.max(1, config.cards))
        var all = extractor.makeMatrix()
        var values: [Double] = []
        var buckets: [UInt32] = []
        var labels: [Bool] = []
        var patterns: [Pattern] = []
        var batch = EventBatch(layout: layout, capacity: 1024)
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        func flush() {
            extractor.process(batch, into: &matrix, outcomes: &outcomes)
            values += matrix.values
            buckets += matrix.buckets
            batch.removeAll()
        }
        let columns = layout.categories
        for t in TransactionStream(config) {
            let key = StableHash.hash(t.card)
            batch.appendEvent(key: key, time: t.time)
            batch.setNumber(0, t.amount)
            for (c, name) in columns.enumerated() {
                let value: String
                switch name {
                case "card_id": value = t.card
                case "merchant_id": value = t.merchantId
                case "merchant_category": value = t.merchantCategory
                case "country": value = t.country
                default: value = t.channel
                }
                batch.setCategory(c, StableHash.category(value))
            }
            labels.append(t.isFraud)
            patterns.append(t.pattern)
            if batch.count == 1024 { flush() }
        }
        if batch.count > 0 { flush() }
        all.reset(rows: labels.count)
        all.values = values
        all.buckets = buckets
        return (all, labels, patterns)
    }
}
