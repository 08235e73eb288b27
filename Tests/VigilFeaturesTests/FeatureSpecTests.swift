import Testing
import VigilCore
import VigilFeatures
import VigilTestKit

@Suite(.ownThread) struct FeatureSpecTests {
    let schema = Schema(fields: [
        FieldSpec(name: "card_id", type: .string), FieldSpec(name: "amount", type: .number),
        FieldSpec(name: "country", type: .category), FieldSpec(name: "online", type: .boolean),
    ])

    func decode(_ list: [ConfigNode]) -> (features: [FeatureSpec], issues: [String]) {
        let d = ConfigDiagnostics()
        let items = list.enumerated().map { (node: $1, path: ConfigPath.root.key("features").index($0)) }
        let features = FeatureSpec.decodeList(items, schema: schema, d)
        return (features, d.issues.map(\.description))
    }

    @Test func decodesEveryKind() {
        let (features, issues) = decode([
            [
                "name": "amt", "kind": "value", "field": "amount", "transform": "log1p", "clip": [0, 1000],
                "bucket": [1, 10, 100],
            ],
            ["name": "mcc", "kind": "category", "field": "country"],
            ["name": "n10m", "kind": "window", "key": "card_id", "window": "10m", "agg": "count"],
            ["name": "mean1h", "kind": "window", "key": "card_id", "window": "1h", "agg": "mean", "of": "amount"],
            [
                "name": "countries", "kind": "window", "key": "card_id", "window": "1d", "agg": "distinct",
                "of": "country",
            ],
            ["name": "rate", "kind": "decayed", "key": "card_id", "agg": "count", "halflife": "1h"],
            ["name": "z", "kind": "zscore", "key": "card_id", "of": "amount", "halflife": "7d"],
            ["name": "since", "kind": "time_since_last", "key": "card_id"],
            ["name": "new_country", "kind": "novelty", "key": "card_id", "of": "country"],
            ["name": "r", "kind": "ratio", "numerator": "amt", "denominator": "mean1h"],
            ["name": "rr", "kind": "ratio", "numerator": "amt", "denominator": "mean1h", "raw": true],
            ["name": "hour", "kind": "calendar", "part": "hour_cos", "timezone": "Asia/Tokyo"],
            ["name": "country_share", "kind": "share", "key": "card_id", "of": "country", "halflife": "1d"],
            ["name": "per_country", "kind": "window", "key": "country", "window": "1h", "agg": "count"],
            ["name": "everyone", "kind": "zscore", "key": "global", "of": "amount", "halflife": "1h"],
        ])
        #expect(issues == [])
        #expect(features.count == 15)
        #expect(features[12].kind == .share(key: "card_id", of: "country", halflife: .seconds(86_400)))
        #expect(features[13].kind.key == "country" && features[14].kind.key == "global")
        #expect(features[10].kind == .ratio(numerator: "amt", denominator: "mean1h", raw: true))
        #expect(features[11].kind == .calendar(part: .hourCos, timeZone: "Asia/Tokyo"))
        #expect(
            features[0].kind
                == .value(
                    field: "amount", transform: ValueTransform(clip: 0...1000, log1p: true, bucketEdges: [1, 10, 100])))
        #expect(features[1].kind == .category(field: "country", buckets: 1024))
        #expect(features[3].kind == .window(key: "card_id", length: .seconds(3600), aggregate: .mean, of: "amount"))
        #expect(features[5].kind == .decayed(key: "card_id", halflife: .seconds(3600), aggregate: .count, of: nil))
        #expect(features[9].kind == .ratio(numerator: "amt", denominator: "mean1h"))
    }

    @Test func fieldReferencesAreCheckedByNameAndType() {
        let (features, issues) = decode([
            ["name": "a", "kind": "value", "field": "amout"],
            ["name": "b", "kind": "window", "key": "amount", "window": "1h", "agg": "sum", "of": "country"],
            ["name": "c", "kind": "novelty", "key": "card_id", "of": "amount"],
        ])
        #expect(features.isEmpty)
        #expect(
            issues == [
                "features[0].field: unknown field 'amout'; did you mean 'amount'?",
                "features[1].key: an entity key must be a field of type category or string; 'amount' is number",
                "features[1].of: agg sum must be a field of type number; 'country' is category",
                "features[2].of: novelty must be a field of type category or string; 'amount' is number",
            ])
    }

    @Test func kindsNamesAndKeysAreValidated() {
        let (_, issues) = decode([
            ["name": "a", "kind": "windw", "key": "card_id"],
            ["name": "a", "kind": "time_since_last", "key": "card_id", "window": "1h"],
            ["name": "r", "kind": "ratio", "numerator": "a", "denominator": "later"],
            ["kind": "window", "key": "card_id", "window": "45d", "agg": "median", "of": "amount"],
            ["name": "v", "kind": "value", "field": "amount", "clip": [5, 1], "bucket": [3, 2], "transform": "log"],
        ])
        #expect(
            issues == [
                "features[0].kind: unknown feature kind 'windw'; did you mean 'window'?",
                "features[1].name: duplicate feature name 'a'",
                "features[1].window: unknown key for kind time_since_last; expected one of: name, kind, key",
                "features[2].denominator: unknown feature 'later'; a ratio may use only features declared before it; expected one of: a",
                "features[3].name: required key is missing",
                "features[3].window: must be between 1s and 30d, got 45d",
                "features[3].agg: unknown window aggregate 'median'; expected one of: count, sum, mean, variance, std, min, max, distinct",
                "features[4].transform: unknown transform 'log'; did you mean 'log1p'?",
                "features[4].clip: must be [min, max] with min < max",
                "features[4].bucket: must be a non-empty list of strictly increasing edges",
            ])
    }
}
