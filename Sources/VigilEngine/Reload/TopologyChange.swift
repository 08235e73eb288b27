import VigilCore
import VigilFeatures
import VigilKafka
import VigilModels

/// What a new topology changes against the running one, and what each change costs: tunables
/// swap in between batches, structural changes rebuild the pipeline from a checkpoint, and
/// changes to how Vigil meets Kafka need a restart and are refused while running.
///
/// Every key is compared as the typed value it is and named by its path in the file
/// (`source.kafka.group`, `models[iforest].kind`), so the audit says what changed without
/// depending on how Swift prints a type.
public struct TopologyChange: Sendable, Equatable {
    /// How a change can be applied; ordered by cost.
    public enum Kind: String, Sendable, Comparable, CaseIterable {
        /// Thresholds, ensemble weights, roles and canary shares, suppression, explanation length.
        case tunable
        /// Fields, features, state limits, models: the affected stages are rebuilt after a
        /// checkpoint (windows and models that did not change keep their state).
        case structural
        /// Brokers, group, source topics and format, output topics, checkpoints, admin, audit.
        case restart

        public static func < (a: Kind, b: Kind) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    /// One changed key.
    public struct Item: Sendable, Equatable {
        /// Where in the file (`threshold.target_alert_rate`, `models[iforest].kind`, `features`).
        public var path: String
        public var kind: Kind
        public var old: String
        public var new: String
    }

    public var items: [Item]

    /// The costliest change (nil: nothing changed).
    public var kind: Kind? { items.map(\.kind).max() }

    /// The differences from `old` (nil: the empty topology of a boot, so everything is new and
    /// structural) to `new`.
    public static func between(_ old: Topology?, _ new: Topology) -> TopologyChange {
        guard let a = old else {
            return TopologyChange(items: [Item(path: "topology", kind: .structural, old: "(none)", new: new.name)])
        }
        let b = new
        var d = Differences()
        d.compare("name", .restart, a.name, b.name, { $0 })
        d.compareSource(a.source, b.source)
        d.compare("alerts.topic", .restart, a.alerts.topic, b.alerts.topic, { $0 })
        d.compare("dead_letter.topic", .restart, a.deadLetter.topic, b.deadLetter.topic, { $0 })
        d.compareCheckpoints(a.checkpoints, b.checkpoints)
        d.compare("admin", .restart, a.admin, b.admin, Text.admin)
        d.compare("audit.topic", .restart, a.audit?.topic, b.audit?.topic, { $0 })
        d.compare("fields", .structural, a.schema.fields, b.schema.fields, Text.fields)
        d.compare("features", .structural, a.features, b.features, Text.features)
        d.compare("state.max_entities", .structural, a.state.maxEntities, b.state.maxEntities, String.init)
        d.compare("state.idle_ttl", .structural, a.state.idleTTL, b.state.idleTTL, DurationText.format)
        d.compare("state.reorder_buffer", .structural, a.state.reorderBuffer, b.state.reorderBuffer, String.init)
        d.compare("state.panes", .structural, a.state.panes, b.state.panes, String.init)
        d.compareThreshold(a.threshold, b.threshold)
        d.compare("alerts.explain", .tunable, a.alerts.explain, b.alerts.explain, String.init)
        d.compare("description", .tunable, a.description, b.description, { $0 })
        d.compareModels(a.models, b.models)
        d.compare("experiment", .structural, a.experiment, b.experiment) { (e: ExperimentSpec) in
            "\(e.name): " + e.arms.map { "\($0.name) \($0.share)" }.joined(separator: ", ")
        }
        // The workers keep each waiting event's segment values: other fields mean new workers.
        d.compare("segments", .structural, a.segments, b.segments, Text.list)
        // The workers' ensembles learn their weights, or do not: new workers.
        d.compare("ensemble.weights", .structural, a.ensemble.weights, b.ensemble.weights, \.rawValue)
        d.compare("drift", .structural, a.drift, b.drift) { (s: DriftSpec) in
            "\(s.topic), action \(s.action.rawValue)"
        }
        d.compare("guard", .tunable, a.rolloutGuard, b.rolloutGuard) { (g: GuardSpec) in
            "\(g.metric.rawValue) over \(g.minLabels) labels, auto_promote \(g.autoPromote)"
        }
        d.compare("federation", .tunable, a.federation, b.federation) { (f: FederationSpec) in
            "\(f.topic) every \(DurationText.format(f.every))"
        }
        d.compare("rollout", .tunable, a.rollout, b.rollout) { (r: RolloutOverride) in
            "\(r.history.count) promotions and rollbacks"
        }
        return TopologyChange(items: d.items)
    }
}

/// Collects the changed keys of two topologies, section by section.
private struct Differences {
    typealias Kind = TopologyChange.Kind
    var items: [TopologyChange.Item] = []

    mutating func compare<T: Equatable>(_ path: String, _ kind: Kind, _ a: T, _ b: T, _ text: (T) -> String) {
        if a != b { items.append(.init(path: path, kind: kind, old: text(a), new: text(b))) }
    }

    mutating func compare<T: Equatable>(_ path: String, _ kind: Kind, _ a: T?, _ b: T?, _ text: (T) -> String) {
        if a != b {
            items.append(.init(path: path, kind: kind, old: a.map(text) ?? "(none)", new: b.map(text) ?? "(none)"))
        }
    }

    /// Each key of two librdkafka property mappings that differs: a restart change, its values
    /// shown `[redacted]` when the key names a secret.
    mutating func compareProperties(_ path: String, _ a: [String: String], _ b: [String: String]) {
        for key in Set(a.keys).union(b.keys).sorted() {
            let shown = KafkaConfiguration.isSecret(key) ? { (_: String) in "[redacted]" } : { $0 }
            compare("\(path).\(key)", .restart, a[key], b[key], shown)
        }
    }

    mutating func compareSource(_ a: SourceSpec, _ b: SourceSpec) {
        let (ka, kb) = (a.kafka, b.kafka)
        compare("source.kafka.brokers", .restart, ka.brokers, kb.brokers, Text.list)
        compare("source.kafka.topics", .restart, ka.topics, kb.topics, Text.list)
        compare("source.kafka.group", .restart, ka.group, kb.group, { $0 })
        compare("source.kafka.start_from", .restart, ka.startFrom, kb.startFrom, \.rawValue)
        compare("source.kafka.create_topics", .restart, ka.createTopics, kb.createTopics, String.init)
        compare("source.kafka.partitions", .restart, ka.partitions, kb.partitions, String.init)
        compare("source.kafka.assignment", .restart, ka.assignment, kb.assignment, \.rawValue)
        compareProperties("source.kafka.properties", ka.properties, kb.properties)
        compareProperties("source.kafka.consumer_properties", ka.consumerProperties, kb.consumerProperties)
        compareProperties("source.kafka.producer_properties", ka.producerProperties, kb.producerProperties)
        compare("source.format", .restart, a.format, b.format, \.rawValue)
        compare("source.key", .restart, a.key, b.key, { $0 })
        compare("source.id", .restart, a.id, b.id, { $0 })
        compare("source.max_event_bytes", .restart, a.maxEventBytes, b.maxEventBytes, String.init)
        compare("source.time.field", .restart, a.time?.field, b.time?.field, { $0 })
        compare("source.time.format", .restart, a.time?.format, b.time?.format, \.rawValue)
        compare(
            "source.time.allowed_lateness", .restart, a.time?.allowedLateness, b.time?.allowedLateness,
            DurationText.format)
        compare("source.time.late", .restart, a.time?.late, b.time?.late, \.rawValue)
        compare("source.time.missing", .restart, a.time?.missing, b.time?.missing, \.rawValue)
        compare(
            "source.time.max_future", .restart, a.time?.maxFuture, b.time?.maxFuture, DurationText.format)
        compare("source.time.future", .restart, a.time?.future, b.time?.future, \.rawValue)
    }

    mutating func compareCheckpoints(_ a: CheckpointSpec?, _ b: CheckpointSpec?) {
        guard let a, let b else {
            compare("checkpoints", .restart, a?.topic, b?.topic, { "topic \($0)" })
            return
        }
        compare("checkpoints.topic", .restart, a.topic, b.topic, { $0 })
        compare("checkpoints.every", .restart, a.every, b.every, DurationText.format)
        compare("checkpoints.every_events", .restart, a.everyEvents, b.everyEvents, String.init)
        compare("checkpoints.keep", .restart, a.keep, b.keep, String.init)
        compare("checkpoints.directory", .restart, a.directory, b.directory, { $0 })
    }

    mutating func compareThreshold(_ a: ThresholdSpec, _ b: ThresholdSpec) {
        compare("threshold.mode", .tunable, a.mode, b.mode, \.rawValue)
        compare("threshold.target_alert_rate", .tunable, a.targetAlertRate, b.targetAlertRate, Text.number)
        compare("threshold.target_precision", .tunable, a.targetPrecision, b.targetPrecision, Text.number)
        compare("threshold.score", .tunable, a.fixedScore, b.fixedScore, Text.number)
        compare("threshold.min_score", .tunable, a.minScore, b.minScore, Text.number)
        compare("threshold.max_score", .tunable, a.maxScore, b.maxScore, Text.number)
        compare("threshold.hysteresis", .tunable, a.hysteresis, b.hysteresis, Text.number)
        compare("threshold.suppress", .tunable, a.suppress, b.suppress, DurationText.format)
        compare("threshold.protect", .tunable, a.protect, b.protect, String.init)
        compare("threshold.warmup_events", .tunable, a.warmupEvents, b.warmupEvents, String.init)
    }

    mutating func compareModels(_ a: [ModelSpec], _ b: [ModelSpec]) {
        guard a.map(\.name) == b.map(\.name) else {
            compare("models", .structural, a.map(\.name), b.map(\.name), Text.list)
            return
        }
        for (x, y) in zip(a, b) {
            let path = "models[\(x.name)]"
            let (lx, ly) = (x.kind.labels?.topic, y.kind.labels?.topic)
            compare(path + ".labels.topic", .restart, lx, ly, { $0 })
            if lx == ly { compare(path + ".kind", .structural, x.kind, y.kind, Text.modelKind) }
            compare(path + ".features", .structural, x.features, y.features, Text.list)
            compare(path + ".seed", .structural, x.seed, y.seed, String.init)
            compare(path + ".role", .tunable, x.role, y.role, \.rawValue)
            compare(path + ".weight", .tunable, x.weight, y.weight, Text.number)
            compare(path + ".share", .tunable, x.canaryShare, y.canaryShare, Text.number)
            compare(path + ".replaces", .tunable, x.replaces, y.replaces, Text.list)
            compare(path + ".group", .tunable, x.group, y.group, { $0 })
        }
    }
}

/// How the audit writes values: the way a topology file would.
private enum Text {
    static func number(_ x: Double) -> String { "\(x)" }

    static func list(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    static func admin(_ a: AdminSpec) -> String {
        "listen \(a.host):\(a.port), token_env \(a.tokenEnv)" + (a.tokenFile.map { ", token_file \($0)" } ?? "")
    }

    static func fields(_ fields: [FieldSpec]) -> String {
        list(
            fields.map { f in
                var t = "\(f.name): \(f.type.rawValue)"
                if !f.required { t += " optional" }
                if let min = f.min { t += " min \(min)" }
                if let max = f.max { t += " max \(max)" }
                return t
            })
    }

    static func features(_ features: [FeatureSpec]) -> String {
        list(features.map { "\($0.name): \(feature($0.kind))" })
    }

    static func feature(_ kind: FeatureSpec.Kind) -> String {
        switch kind {
        case .value(let field, let t):
            var parts = [field]
            if t.log1p { parts.append("log1p") }
            if let clip = t.clip { parts.append("clip \(clip.lowerBound)...\(clip.upperBound)") }
            if let edges = t.bucketEdges { parts.append("buckets \(edges)") }
            return "value(" + parts.joined(separator: ", ") + ")"
        case .category(let field, let buckets): return "category(\(field), \(buckets) buckets)"
        case .window(let key, let length, let aggregate, let of):
            return
                "window(\(key), \(DurationText.format(length)), \(aggregate.rawValue)\(of.map { " of \($0)" } ?? ""))"
        case .decayed(let key, let halflife, let aggregate, let of):
            return
                "decayed(\(key), halflife \(DurationText.format(halflife)), \(aggregate.rawValue)\(of.map { " of \($0)" } ?? ""))"
        case .zscore(let key, let of, let halflife):
            return "zscore(\(key), \(of), halflife \(DurationText.format(halflife)))"
        case .timeSinceLast(let key): return "time_since_last(\(key))"
        case .novelty(let key, let of): return "novelty(\(key), \(of))"
        case .share(let key, let of, let halflife):
            return "share(\(key), \(of), halflife \(DurationText.format(halflife)))"
        case .ratio(let numerator, let denominator, let raw):
            return "ratio(\(numerator) / \(denominator)\(raw ? ", raw" : ""))"
        case .calendar(let part, let zone): return "calendar(\(part.rawValue), \(zone))"
        }
    }

    static func modelKind(_ kind: ModelSpec.Kind) -> String {
        switch kind {
        case .isolationForest(let f), .countingIsolationForest(let f):
            return "\(kind.tag.rawValue)(trees: \(f.trees), sample: \(f.sample), window_events: \(f.windowEvents))"
        case .logisticRegression(let lr):
            let labels = lr.labels
            return
                "logistic_regression(optimizer: \(lr.optimizer.rawValue), learning_rate: \(lr.learningRate), l1: \(lr.l1), l2: \(lr.l2), positive_weight: \(lr.positiveWeight), labels: \(labels.topic) key \(labels.key) field \(labels.field) expire \(DurationText.format(labels.expire)))"
        }
    }
}
