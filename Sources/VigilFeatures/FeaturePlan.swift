import VigilCore

/// A topology's features compiled for the hot path: which columns of an `EventBatch` each feature
/// reads, what per-entity state it needs, and where that state lives in an entity's row.
///
/// Features that share a window (same length and operand) or a half-life share state, so
/// `count`, `sum` and `mean` of one field over one hour cost a single set of panes.
public struct FeaturePlan: Sendable, Hashable {
    /// Output numeric column names, in topology order.
    public let names: [String]
    /// Output categorical column names and their bucket counts.
    public let categoryNames: [String]
    public let categoryBuckets: [Int]
    /// Sub-windows per sliding window.
    public let panes: Int
    /// Events per entity kept unfolded for exact late arrivals.
    public let reorderBuffer: Int

    let columns: [Column]
    let transforms: [ValueTransform]
    let categoryColumns: [(field: Int, buckets: Int)]
    let windows: [WindowGroup]
    let distincts: [DistinctState]
    let decays: [DecayGroup]
    let novelties: [NoveltyState]
    let shares: [ShareState]
    /// The time zones of calendar features.
    let zones: [ZoneTable]
    /// Numeric / categorical batch columns copied into each unfolded event.
    let tailNumbers: [Int]
    let tailCategories: [Int]
    /// The signature of the keyed stages whose outputs this plan reads as values (0: none), so
    /// that a checkpoint is restored only where they are the same too.
    let keyedSignature: UInt64
    let layout: RowLayout
    /// Bytes of state per entity (one row of the entity store).
    public var rowBytes: Int { layout.stride }

    /// How one numeric output column is computed.
    enum Column: Sendable, Hashable {
        case value(field: Int, transform: Int)  // index into `transforms`
        case window(group: Int, WindowAggregate)
        case distinct(Int)
        case decayed(group: Int, DecayedAggregate)
        case zscore(group: Int)
        case timeSinceLast
        case novelty(Int)
        case share(Int)
        /// Output columns divided; an operand's raw field (a numeric batch column), or -1 when
        /// the column's own value is used.
        case ratio(numerator: Int, denominator: Int, rawNumerator: Int, rawDenominator: Int)
        case calendar(CalendarPart, zone: Int)  // index into `zones`
    }

    /// Panes of one window length over one operand (nil: every event counts).
    struct WindowGroup: Sendable, Hashable {
        var lengthMs: Int64
        var paneMs: Int64
        var paneInverse: Double = 0
        var operand: Int?  // numeric batch column
        var tailOperand: Int?  // index into tailNumbers
        var needsSum = false, needsSquares = false, needsMin = false, needsMax = false
        // Byte offsets in the row (-1: absent).
        var counts = -1, sums = -1, squares = -1, mins = -1, maxs = -1
    }

    /// Distinct values of a categorical field over a window: the last pane each was seen in.
    struct DistinctState: Sendable, Hashable {
        var lengthMs: Int64
        var paneMs: Int64
        var paneInverse: Double = 0
        var field: Int
        var tailField: Int
        var offset = -1  // capacity × (hash UInt32, pane UInt32)
    }

    /// Exponentially decayed weight and power sums of one operand (nil: count only).
    struct DecayGroup: Sendable, Hashable {
        var halflifeMs: Double
        var inverseHalflife: Double = 0
        var operand: Int?
        var tailOperand: Int?
        var offset = -1  // weight, sum, squares as Double, as of the newest event (weight only without operand)
    }

    /// The values of a categorical field an entity used most recently.
    struct NoveltyState: Sendable, Hashable {
        var field: Int
        var tailField: Int
        var offset = -1  // capacity × UInt32, most recent first
    }

    /// Decayed weights of the values of a categorical field an entity used, and of all its
    /// events with a value, as of its newest folded event.
    struct ShareState: Sendable, Hashable {
        var field: Int
        var tailField: Int
        var inverseHalflife: Double
        var weights = -1  // valuesRemembered × Double, then the total as a Double
        var hashes = -1  // valuesRemembered × UInt32
    }

    /// Where things live in an entity's row.
    struct RowLayout: Sendable, Hashable {
        static let fingerprint = 0
        static let newest = 8
        static let folded = 16
        static let tailCount = 24
        /// The entity's key group (UInt32, 0 for none): the source partition that delivers it,
        /// so its state can move with the partition (`FeatureExtractor+KeyGroups`).
        static let keyGroup = 28
        var tail = 32
        var tailStride = 8
        var stride = 32
    }

    /// Values remembered per distinct / novelty feature: beyond this many, distinct counts stop
    /// growing and the least recently used value is forgotten.
    public static let valuesRemembered = 8

    /// Compiles `features` against `layout`. Every referenced field must be in the layout:
    /// topology validation guarantees it, so a miss here is a programming error, reported.
    public init(
        features: [FeatureSpec], layout event: EventLayout, state: StateSpec = StateSpec(), keyedSignature: UInt64 = 0
    ) throws(VigilError) {
        self.keyedSignature = keyedSignature
        panes = state.panes
        reorderBuffer = state.reorderBuffer
        func number(_ name: String) throws(VigilError) -> Int {
            guard let i = event.numbers.firstIndex(of: name) else {
                throw VigilError(.invalidConfiguration, "feature field '\(name)' is not a numeric column")
            }
            return i
        }
        func category(_ name: String) throws(VigilError) -> Int {
            guard let i = event.categories.firstIndex(of: name) else {
                throw VigilError(.invalidConfiguration, "feature field '\(name)' is not a categorical column")
            }
            return i
        }

        var names: [String] = []
        var categoryNames: [String] = []
        var categoryBuckets: [Int] = []
        var columns: [Column] = []
        var transforms: [ValueTransform] = []
        var categoryColumns: [(field: Int, buckets: Int)] = []
        var windows: [WindowGroup] = []
        var distincts: [DistinctState] = []
        var decays: [DecayGroup] = []
        var novelties: [NoveltyState] = []
        var shares: [ShareState] = []
        var zones: [ZoneTable] = []
        var tailNumbers: [Int] = []
        var tailCategories: [Int] = []
        func tailNumber(_ c: Int) -> Int {
            if let i = tailNumbers.firstIndex(of: c) { return i }
            tailNumbers.append(c)
            return tailNumbers.count - 1
        }
        func tailCategory(_ c: Int) -> Int {
            if let i = tailCategories.firstIndex(of: c) { return i }
            tailCategories.append(c)
            return tailCategories.count - 1
        }
        func windowGroup(_ lengthMs: Int64, _ operand: Int?) -> Int {
            if let i = windows.firstIndex(where: { $0.lengthMs == lengthMs && $0.operand == operand }) { return i }
            windows.append(
                WindowGroup(
                    lengthMs: lengthMs, paneMs: max(1, lengthMs / Int64(state.panes)), operand: operand,
                    tailOperand: operand.map(tailNumber)))
            return windows.count - 1
        }
        func decayGroup(_ halflife: Duration, _ operand: Int?) -> Int {
            let h = Double(halflife.wholeMilliseconds)
            if let i = decays.firstIndex(where: { $0.halflifeMs == h && $0.operand == operand }) { return i }
            decays.append(DecayGroup(halflifeMs: h, operand: operand, tailOperand: operand.map(tailNumber)))
            return decays.count - 1
        }

        for feature in features {
            if case .category(let field, let buckets) = feature.kind {
                categoryNames.append(feature.name)
                categoryBuckets.append(buckets)
                categoryColumns.append((try category(field), buckets))
                continue
            }
            names.append(feature.name)
            switch feature.kind {
            case .category: break
            case .value(let field, let transform):
                transforms.append(transform)
                columns.append(.value(field: try number(field), transform: transforms.count - 1))
            case .window(_, let length, let aggregate, let of):
                let lengthMs = length.wholeMilliseconds
                if aggregate == .distinct {
                    let field = try category(of ?? "")
                    if let i = distincts.firstIndex(where: { $0.lengthMs == lengthMs && $0.field == field }) {
                        columns.append(.distinct(i))
                    } else {
                        distincts.append(
                            DistinctState(
                                lengthMs: lengthMs, paneMs: max(1, lengthMs / Int64(state.panes)), field: field,
                                tailField: tailCategory(field)))
                        columns.append(.distinct(distincts.count - 1))
                    }
                    continue
                }
                let operand = try of.map { name throws(VigilError) in try number(name) }
                let g = windowGroup(lengthMs, aggregate == .count ? nil : operand)
                switch aggregate {
                case .sum, .mean: windows[g].needsSum = true
                case .variance, .std:
                    windows[g].needsSum = true
                    windows[g].needsSquares = true
                case .min: windows[g].needsMin = true
                case .max: windows[g].needsMax = true
                case .count, .distinct: break
                }
                columns.append(.window(group: g, aggregate))
            case .decayed(_, let halflife, let aggregate, let of):
                let operand = aggregate == .count ? nil : try of.map { name throws(VigilError) in try number(name) }
                columns.append(.decayed(group: decayGroup(halflife, operand), aggregate))
            case .zscore(_, let of, let halflife):
                columns.append(.zscore(group: decayGroup(halflife, try number(of))))
            case .timeSinceLast:
                columns.append(.timeSinceLast)
            case .novelty(_, let of):
                let field = try category(of)
                if let i = novelties.firstIndex(where: { $0.field == field }) {
                    columns.append(.novelty(i))
                } else {
                    novelties.append(NoveltyState(field: field, tailField: tailCategory(field)))
                    columns.append(.novelty(novelties.count - 1))
                }
            case .share(_, let of, let halflife):
                let field = try category(of)
                let inverse = 1 / Double(halflife.wholeMilliseconds)
                if let i = shares.firstIndex(where: { $0.field == field && $0.inverseHalflife == inverse }) {
                    columns.append(.share(i))
                } else {
                    shares.append(ShareState(field: field, tailField: tailCategory(field), inverseHalflife: inverse))
                    columns.append(.share(shares.count - 1))
                }
            case .ratio(let numerator, let denominator, let raw):
                guard let n = names.firstIndex(of: numerator), let d = names.firstIndex(of: denominator) else {
                    throw VigilError(.invalidConfiguration, "ratio '\(feature.name)' refers to a non-numeric feature")
                }
                // With `raw`, a transformed value feature is read before its transform.
                func rawField(_ c: Int) -> Int {
                    guard raw, case .value(let field, let t) = columns[c], transforms[t] != .identity else { return -1 }
                    return field
                }
                columns.append(
                    .ratio(numerator: n, denominator: d, rawNumerator: rawField(n), rawDenominator: rawField(d)))
            case .calendar(let part, let identifier):
                if let z = zones.firstIndex(where: { $0.identifier == identifier }) {
                    columns.append(.calendar(part, zone: z))
                } else {
                    guard let table = ZoneTable(identifier) else {
                        throw VigilError(.invalidConfiguration, "unknown time zone '\(identifier)'")
                    }
                    zones.append(table)
                    columns.append(.calendar(part, zone: zones.count - 1))
                }
            }
        }

        // Reciprocals, so the hot path multiplies instead of dividing.
        for i in windows.indices { windows[i].paneInverse = 1 / Double(windows[i].paneMs) }
        for i in distincts.indices { distincts[i].paneInverse = 1 / Double(distincts[i].paneMs) }
        for i in decays.indices { decays[i].inverseHalflife = 1 / decays[i].halflifeMs }

        // Row layout: header, 8-byte sections, the unfolded events, then 4-byte sections.
        var layout = RowLayout()
        var offset = 32
        func take(_ bytes: Int) -> Int {
            defer { offset += bytes }
            return offset
        }
        let b = state.panes
        for i in windows.indices {
            if windows[i].needsSum { windows[i].sums = take(8 * b) }
            if windows[i].needsSquares { windows[i].squares = take(8 * b) }
            if windows[i].needsMin { windows[i].mins = take(8 * b) }
            if windows[i].needsMax { windows[i].maxs = take(8 * b) }
        }
        for i in decays.indices { decays[i].offset = take(decays[i].operand == nil ? 8 : 24) }
        for i in shares.indices { shares[i].weights = take(8 * Self.valuesRemembered + 8) }
        layout.tail = offset
        let rawTail = 8 + 8 * tailNumbers.count + 4 * tailCategories.count
        layout.tailStride = (rawTail + 7) & ~7
        offset += layout.tailStride * state.reorderBuffer
        for i in windows.indices { windows[i].counts = take(4 * b) }
        for i in distincts.indices { distincts[i].offset = take(8 * Self.valuesRemembered) }
        for i in novelties.indices { novelties[i].offset = take(4 * Self.valuesRemembered) }
        for i in shares.indices { shares[i].hashes = take(4 * Self.valuesRemembered) }
        layout.stride = (offset + 7) & ~7

        self.names = names
        self.categoryNames = categoryNames
        self.categoryBuckets = categoryBuckets
        self.columns = columns
        self.transforms = transforms
        self.categoryColumns = categoryColumns
        self.windows = windows
        self.distincts = distincts
        self.decays = decays
        self.novelties = novelties
        self.shares = shares
        self.zones = zones
        self.tailNumbers = tailNumbers
        self.tailCategories = tailCategories
        self.layout = layout
    }

    /// Bytes of state each entity occupies (its row; the lookup table adds about 8–16 more).
    public var bytesPerEntityRow: Int { layout.stride }

    /// A hash of everything that decides the row layout and meaning: a checkpoint is only
    /// restored into a plan with the same signature.
    public var signature: UInt64 {
        // Spelled out field by field (not through `description`, whose format is not a contract),
        // so the signature stays the same across Swift releases.
        var text =
            "v2|panes=\(panes)|reorder=\(reorderBuffer)|remember=\(Self.valuesRemembered)|stride=\(layout.stride)"
        text += "|names=" + names.joined(separator: ",")
        text +=
            "|cats="
            + zip(categoryNames, categoryColumns).map { "\($0.0):\($0.1.field):\($0.1.buckets)" }.joined(separator: ",")
        for column in columns {
            switch column {
            case .value(let field, let t):
                let transform = transforms[t]
                let clip = transform.clip.map { "\($0.lowerBound.bitPattern):\($0.upperBound.bitPattern)" } ?? "-"
                let edges = transform.bucketEdges?.map { String($0.bitPattern) }.joined(separator: ":") ?? "-"
                text += "|value:\(field):\(clip):\(transform.log1p):\(edges)"
            case .window(let g, let aggregate): text += "|window:\(g):\(aggregate.rawValue)"
            case .distinct(let i): text += "|distinct:\(i)"
            case .decayed(let g, let aggregate): text += "|decayed:\(g):\(aggregate.rawValue)"
            case .zscore(let g): text += "|zscore:\(g)"
            case .timeSinceLast: text += "|since"
            case .novelty(let i): text += "|novelty:\(i)"
            case .share(let i): text += "|share:\(i)"
            case .ratio(let n, let d, let rn, let rd):
                text += "|ratio:\(n):\(d)"
                if rn >= 0 || rd >= 0 { text += ":raw:\(rn):\(rd)" }
            case .calendar(let part, let z): text += "|calendar:\(part.rawValue):\(zones[z].identifier)"
            }
        }
        func int(_ x: Int?) -> String { x.map(String.init) ?? "-" }
        for w in windows {
            text +=
                "|w:\(w.lengthMs):\(w.paneMs):\(int(w.operand)):\(w.counts):\(w.sums):\(w.squares):\(w.mins):\(w.maxs)"
        }
        for d in distincts { text += "|d:\(d.lengthMs):\(d.field):\(d.offset)" }
        for d in decays { text += "|dec:\(d.halflifeMs.bitPattern):\(int(d.operand)):\(d.offset)" }
        for n in novelties { text += "|nov:\(n.field):\(n.offset)" }
        for s in shares { text += "|share:\(s.field):\(s.inverseHalflife.bitPattern):\(s.weights):\(s.hashes)" }
        text +=
            "|tail:" + tailNumbers.map(String.init).joined(separator: ",") + "/"
            + tailCategories.map(String.init).joined(separator: ",") + "@\(layout.tail):\(layout.tailStride)"
        if keyedSignature != 0 { text += "|keyed:\(keyedSignature)" }
        return StableHash.hash(text)
    }

    public static func == (a: FeaturePlan, b: FeaturePlan) -> Bool { a.signature == b.signature }
    public func hash(into hasher: inout Hasher) { hasher.combine(signature) }
}
