import Foundation
import VigilCore

extension FeatureSpec {
    /// Longest window and half-life accepted: state for longer spans belongs in a batch system.
    public static let windowRange: ClosedRange<Duration> = .seconds(1) ... .seconds(30 * 86_400)
    public static let halflifeRange: ClosedRange<Duration> = .seconds(1) ... .seconds(365 * 86_400)

    /// Decodes the `features:` list, checking every field reference against `schema` and every
    /// feature reference against the features declared before it. A feature's `key` may be any
    /// category or string field, or `global` (`KeyedFeatures` splits them by key).
    public static func decodeList(
        _ items: [(node: ConfigNode, path: ConfigPath)], schema: Schema, _ d: ConfigDiagnostics
    ) -> [FeatureSpec] {
        var features: [FeatureSpec] = []
        var names: [String] = []
        for (node, path) in items {
            let issuesBefore = d.issues.count
            guard let object = ConfigObject(node, at: path, diagnostics: d) else { continue }
            let name = object.string("name", required: true)
            if let name {
                if names.contains(name) { object.report("name", "duplicate feature name '\(name)'") }
            }
            let earlier = names
            if let name, !names.contains(name) { names.append(name) }
            // Without a known kind the valid keys are unknown too, so they are not checked.
            guard let tag = object.choice("kind", as: Tag.self, required: true, noun: "feature kind") else { continue }
            let kind = decodeKind(tag, object, schema: schema, earlier: earlier)
            object.finish(context: "for kind \(tag.rawValue)")
            if let name, let kind, d.issues.count == issuesBefore {
                features.append(FeatureSpec(name: name, kind: kind))
            }
        }
        return features
    }

    private static func decodeKind(
        _ tag: Tag, _ o: ConfigObject, schema: Schema, earlier: [String]
    ) -> Kind? {
        func field(_ key: String, _ types: Set<FieldType>, role: String) -> String? {
            guard let name = o.string(key, required: true) else { return nil }
            return schema.check(name, key: key, in: o, types: types, role: role)?.name
        }
        /// The entity a keyed feature aggregates over: the source key, any other category or
        /// string field (state then lives in a keyed stage of its own, `KeyedFeatures`), or
        /// `global` (one aggregate over every event) when no field has that name.
        func entityKey() -> String? {
            if case .scalar(FeatureSpec.globalKey, _)? = o.node("key")?.content,
                !schema.fields.contains(where: { $0.name == FeatureSpec.globalKey })
            {
                return FeatureSpec.globalKey
            }
            return field("key", [.category, .string], role: "an entity key")
        }
        /// `of` for aggregate `agg`: a field of `types`, or nothing when the aggregate counts
        /// events (`types` nil). Returns nil when invalid, `.some(nil)` when rightly absent.
        func operand(_ agg: String?, _ types: Set<FieldType>?) -> String?? {
            guard let agg else {
                o.allow("of")  // unknown aggregate: already reported, `of` cannot be judged
                return nil
            }
            guard let types else {
                if o.node("of") != nil {
                    o.report("of", "agg \(agg) counts events and takes no 'of'")
                    return nil
                }
                return .some(nil)
            }
            return field("of", types, role: "agg \(agg)").map { .some($0) }
        }

        switch tag {
        case .value:
            let f = field("field", [.number], role: "a value feature")
            let transform = decodeTransform(o)
            guard let f, let transform else { return nil }
            return .value(field: f, transform: transform)
        case .category:
            let f = field("field", [.category, .string, .boolean], role: "a category feature")
            let buckets = o.int("buckets", in: 2...(1 << 24)) ?? 1024
            return f.map { .category(field: $0, buckets: buckets) }
        case .window:
            let key = entityKey()
            let length = o.duration("window", in: windowRange, required: true)
            let agg = o.choice("agg", as: WindowAggregate.self, required: true, noun: "window aggregate")
            let of = operand(agg?.rawValue, agg?.operandTypes)
            guard let key, let length, let agg, let of else { return nil }
            return .window(key: key, length: length, aggregate: agg, of: of)
        case .decayed:
            let key = entityKey()
            let halflife = o.duration("halflife", in: halflifeRange, required: true)
            let agg = o.choice("agg", as: DecayedAggregate.self, required: true, noun: "decayed aggregate")
            let of = operand(agg?.rawValue, agg?.operandTypes)
            guard let key, let halflife, let agg, let of else { return nil }
            return .decayed(key: key, halflife: halflife, aggregate: agg, of: of)
        case .zscore:
            let key = entityKey()
            let of = field("of", [.number], role: "a z-score")
            let halflife = o.duration("halflife", in: halflifeRange, required: true)
            guard let key, let of, let halflife else { return nil }
            return .zscore(key: key, of: of, halflife: halflife)
        case .timeSinceLast:
            return entityKey().map { .timeSinceLast(key: $0) }
        case .novelty:
            let key = entityKey()
            let of = field("of", [.category, .string], role: "novelty")
            guard let key, let of else { return nil }
            return .novelty(key: key, of: of)
        case .share:
            let key = entityKey()
            let of = field("of", [.category, .string], role: "a share")
            let halflife = o.duration("halflife", in: halflifeRange, required: true)
            guard let key, let of, let halflife else { return nil }
            return .share(key: key, of: of, halflife: halflife)
        case .ratio:
            func feature(_ key: String) -> String? {
                guard let name = o.string(key, required: true) else { return nil }
                guard earlier.contains(name) else {
                    o.report(
                        key,
                        "unknown feature '\(name)'; a ratio may use only features declared before it"
                            + Suggestions.hint(for: name, in: earlier, noun: "one of"))
                    return nil
                }
                return name
            }
            let numerator = feature("numerator")
            let denominator = feature("denominator")
            let raw = o.bool("raw") ?? false
            guard let numerator, let denominator else { return nil }
            return .ratio(numerator: numerator, denominator: denominator, raw: raw)
        case .calendar:
            let part = o.choice("part", as: CalendarPart.self, required: true, noun: "calendar part")
            let zone = o.string("timezone") ?? "UTC"
            guard TimeZone(identifier: zone) != nil else {
                o.report("timezone", "unknown time zone '\(zone)'; use an IANA name such as UTC or Europe/Berlin")
                return nil
            }
            return part.map { .calendar(part: $0, timeZone: zone) }
        }
    }

    private static func decodeTransform(_ o: ConfigObject) -> ValueTransform? {
        var transform = ValueTransform()
        var ok = true
        if let name = o.string("transform") {
            switch name {
            case "log1p": transform.log1p = true
            case "none": break
            default:
                o.report(
                    "transform", "unknown transform '\(name)'" + Suggestions.hint(for: name, in: ["log1p", "none"]))
                ok = false
            }
        }
        if let bounds = numbers(o, "clip") {
            if bounds.count == 2, bounds[0] < bounds[1] {
                transform.clip = bounds[0]...bounds[1]
            } else {
                o.report("clip", "must be [min, max] with min < max")
                ok = false
            }
        } else if o.node("clip") != nil {
            ok = false
        }
        if let edges = numbers(o, "bucket") {
            if !edges.isEmpty, zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) {
                transform.bucketEdges = edges
            } else {
                o.report("bucket", "must be a non-empty list of strictly increasing edges")
                ok = false
            }
        } else if o.node("bucket") != nil {
            ok = false
        }
        return ok ? transform : nil
    }

    private static func numbers(_ o: ConfigObject, _ key: String) -> [Double]? {
        guard let items = o.list(key) else { return nil }
        let values = items.compactMap {
            ConfigScalar.double($0.node, in: NumberRange(-.infinity, .infinity), at: $0.path, o.diagnostics)
        }
        return values.count == items.count ? values : nil
    }
}
