import VigilCore

/// Limits of the per-entity state, so that no key cardinality or event order can exhaust memory.
/// Key `state` of a topology (optional; every key has a default).
public struct StateSpec: Sendable, Hashable {
    /// Most entities kept, over all workers; beyond it the least recently active are evicted.
    /// Key `max_entities` (default 2,000,000; 1...1,000,000,000).
    public var maxEntities: Int = 2_000_000
    /// An entity without events for this long (in event time) is forgotten. Key `idle_ttl`
    /// (default 30d; at least the longest window).
    public var idleTTL: Duration = .seconds(30 * 86_400)
    /// Events per entity kept unfolded, so that a late event within the allowed lateness still
    /// gets exactly the features it would have had in order. Key `reorder_buffer` (default 2, 0...64).
    public var reorderBuffer: Int = 2
    /// Sub-windows ("panes") each sliding window is kept in, unless the feature says otherwise.
    /// Key `panes` (default 8; a power of two, 2...64).
    public var panes: Int = 8

    public init() {}

    public static let maxEntitiesRange = 1...1_000_000_000
    public static let reorderRange = 0...64
    public static let panesRange = 2...64

    /// Decodes the `state:` mapping. `longestWindow` is the longest window among the features,
    /// which `idle_ttl` may not undercut.
    public static func decode(_ o: ConfigObject, longestWindow: Duration?) -> StateSpec {
        var spec = StateSpec()
        if let n = o.int("max_entities", in: maxEntitiesRange) { spec.maxEntities = n }
        if let ttl = o.duration("idle_ttl", in: .seconds(1) ... .seconds(3650 * 86_400)) {
            if let longestWindow, ttl < longestWindow {
                o.report(
                    "idle_ttl",
                    "\(DurationText.format(ttl)) is shorter than the longest window (\(DurationText.format(longestWindow))): windows would forget early"
                )
            }
            spec.idleTTL = ttl
        }
        if let n = o.int("reorder_buffer", in: reorderRange) { spec.reorderBuffer = n }
        if let n = o.int("panes", in: panesRange) {
            if n & (n - 1) == 0 {
                spec.panes = n
            } else {
                o.report("panes", "must be a power of two (2, 4, 8, 16, 32 or 64), got \(n)")
            }
        }
        o.finish()
        return spec
    }
}
