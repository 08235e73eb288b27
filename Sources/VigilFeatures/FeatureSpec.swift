import VigilCore

/// One feature of a topology: how a column of the feature vector is computed from an event and
/// its entity's history. Declared as a list under `features:`, each entry tagged with `kind:`.
public struct FeatureSpec: Sendable, Hashable {
    /// Column name, unique in the topology. Key `name` (required).
    public var name: String
    /// What the column computes.
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The feature kinds, one per `kind:` tag.
    public enum Kind: Sendable, Hashable {
        /// `kind: value`: a numeric field of the event itself, optionally transformed.
        case value(field: String, transform: ValueTransform)
        /// `kind: category`: a categorical field hashed into `buckets` columns (for linear models).
        case category(field: String, buckets: Int)
        /// `kind: window`: an aggregate over the entity's events in a sliding event-time window.
        case window(key: String, length: Duration, aggregate: WindowAggregate, of: String?)
        /// `kind: decayed`: an exponentially decayed aggregate with a half-life.
        case decayed(key: String, halflife: Duration, aggregate: DecayedAggregate, of: String?)
        /// `kind: zscore`: how unusual a value is against the entity's own decayed mean and spread.
        case zscore(key: String, of: String, halflife: Duration)
        /// `kind: time_since_last`: seconds since the entity's previous event.
        case timeSinceLast(key: String)
        /// `kind: novelty`: 1 the first time this entity shows this value of a categorical field.
        case novelty(key: String, of: String)
        /// `kind: share`: the decayed share of the entity's earlier events that had this event's
        /// value of a categorical field (how often this card uses this kind of merchant).
        case share(key: String, of: String, halflife: Duration)
        /// `kind: ratio`: one earlier feature divided by another. With `raw`, an operand that is
        /// a transformed `value` feature contributes its field's value in the event's own units
        /// (the amount, not its log1p), so that the ratio divides like by like.
        case ratio(numerator: String, denominator: String, raw: Bool = false)
        /// `kind: calendar`: a part of the event's local time (hour of day, day of week, or
        /// either as a point on a circle) in a time zone (an IANA name; UTC by default).
        case calendar(part: CalendarPart, timeZone: String)

        /// The entity whose history the feature aggregates (`key`), for the keyed kinds.
        public var key: String? {
            switch self {
            case .window(let key, _, _, _), .decayed(let key, _, _, _), .zscore(let key, _, _),
                .timeSinceLast(let key), .novelty(let key, _), .share(let key, _, _):
                return key
            case .value, .category, .ratio, .calendar: return nil
            }
        }
    }

    /// The `key` meaning "every event": one aggregate over the whole stream.
    public static let globalKey = "global"

    /// The `kind:` tags.
    public enum Tag: String, CaseIterable, Sendable {
        case value, category, window, decayed, zscore
        case timeSinceLast = "time_since_last"
        case novelty, share, ratio, calendar
    }
}

/// Per-event transforms of a numeric value, applied in order: clip, then log1p, then bucket.
public struct ValueTransform: Sendable, Hashable {
    /// Key `clip: [min, max]`.
    public var clip: ClosedRange<Double>?
    /// Key `transform: log1p` (sign-preserving log(1 + |x|)).
    public var log1p: Bool
    /// Key `bucket: [edges…]`: the value becomes the index of its bucket (strictly increasing edges).
    public var bucketEdges: [Double]?

    public init(clip: ClosedRange<Double>? = nil, log1p: Bool = false, bucketEdges: [Double]? = nil) {
        self.clip = clip
        self.log1p = log1p
        self.bucketEdges = bucketEdges
    }

    public static let identity = ValueTransform()
}

/// Aggregates over a sliding window. Key `agg`.
public enum WindowAggregate: String, Sendable, Hashable, CaseIterable {
    case count, sum, mean, variance, std, min, max, distinct

    /// Which field types `of` must have; nil when the aggregate takes no `of`.
    var operandTypes: Set<FieldType>? {
        switch self {
        case .count: return nil
        case .distinct: return [.category, .string]
        default: return [.number]
        }
    }
}

/// Aggregates with exponential decay. Key `agg`.
public enum DecayedAggregate: String, Sendable, Hashable, CaseIterable {
    case count, sum, mean, std

    /// Which field types `of` must have; nil when the aggregate takes no `of`.
    var operandTypes: Set<FieldType>? { self == .count ? nil : [.number] }
}
