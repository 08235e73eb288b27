import VigilModels

/// What a new topology changes against the running one, and what each change costs: tunables
/// swap in between batches, structural changes rebuild the pipeline from a checkpoint, and
/// changes to how Vigil meets Kafka need a restart and are refused while running.
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
        /// Where in the file (`threshold`, `models[iforest]`, `source`).
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
        guard let old else {
            return TopologyChange(items: [Item(path: "topology", kind: .structural, old: "(none)", new: new.name)])
        }
        var items: [Item] = []
        func compare<T: Equatable>(_ path: String, _ kind: Kind, _ a: T, _ b: T) {
            if a != b { items += fieldChanges(path, kind, a, b, depth: 3) }
        }
        compare("name", .restart, old.name, new.name)
        compare("source", .restart, old.source, new.source)
        compare("alerts.topic", .restart, old.alerts.topic, new.alerts.topic)
        compare("dead_letter", .restart, old.deadLetter, new.deadLetter)
        compare("checkpoints", .restart, old.checkpoints, new.checkpoints)
        compare("admin", .restart, old.admin, new.admin)
        compare("audit", .restart, old.audit, new.audit)
        compare("fields", .structural, old.schema.fields, new.schema.fields)
        compare("features", .structural, old.features, new.features)
        compare("state", .structural, old.state, new.state)
        compare("threshold", .tunable, old.threshold, new.threshold)
        compare("alerts.explain", .tunable, old.alerts.explain, new.alerts.explain)
        compare("description", .tunable, old.description, new.description)
        if old.models.map(\.name) != new.models.map(\.name) {
            items.append(
                Item(
                    path: "models", kind: .structural, old: text(old.models.map(\.name)),
                    new: text(new.models.map(\.name))))
        } else {
            for (a, b) in zip(old.models, new.models) {
                let path = "models[\(a.name)]"
                compare(path + ".labels", .restart, a.kind.labels?.topic, b.kind.labels?.topic)
                var aa = a
                var bb = b
                (aa.role, aa.weight, aa.canaryShare) = (.active, 1, nil)
                (bb.role, bb.weight, bb.canaryShare) = (.active, 1, nil)
                if a.kind.labels?.topic == b.kind.labels?.topic { compare(path, .structural, aa, bb) }
                compare(path + ".role", .tunable, a.role, b.role)
                compare(path + ".weight", .tunable, a.weight, b.weight)
                compare(path + ".share", .tunable, a.canaryShare, b.canaryShare)
            }
        }
        return TopologyChange(items: items)
    }

    /// The changed leaves of two values of one type, by field (`source.kafka.group`), so the
    /// audit names what changed rather than printing whole sections.
    private static func fieldChanges(_ path: String, _ kind: Kind, _ a: Any, _ b: Any, depth: Int) -> [Item] {
        let ma = Mirror(reflecting: a)
        let mb = Mirror(reflecting: b)
        // Both present: compare what the optionals hold.
        if ma.displayStyle == .optional, mb.displayStyle == .optional, let va = ma.children.first?.value,
            let vb = mb.children.first?.value
        {
            return fieldChanges(path, kind, va, vb, depth: depth)
        }
        // Into the topology's own structs only; values that describe themselves (durations) are leaves.
        if depth > 0, ma.displayStyle == .struct, mb.displayStyle == .struct, ma.children.count == mb.children.count,
            !(a is any CustomStringConvertible)
        {
            var out: [Item] = []
            for (ca, cb) in zip(ma.children, mb.children) {
                guard let label = ca.label, text(ca.value) != text(cb.value) else { continue }
                out += fieldChanges(path + "." + snakeCase(label), kind, ca.value, cb.value, depth: depth - 1)
            }
            if !out.isEmpty { return out }
        }
        return [Item(path: path, kind: kind, old: text(a), new: text(b))]
    }

    private static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase {
                out += "_" + c.lowercased()
            } else {
                out.append(c)
            }
        }
        return out
    }

    private static func text(_ value: Any) -> String {
        if let o = value as? (any OptionalProtocol) { return o.text }
        let s = String(describing: value).replacingOccurrences(of: "VigilEngine.", with: "").replacingOccurrences(
            of: "VigilModels.", with: "")
        return s.count > 400 ? String(s.prefix(400)) + "…" : s
    }
}

/// Prints an optional's payload without `Optional(…)`, and nil as `(none)`.
private protocol OptionalProtocol {
    var text: String { get }
}

extension Optional: OptionalProtocol {
    var text: String {
        switch self {
        case .some(let v): String(describing: v)
        case .none: "(none)"
        }
    }
}
