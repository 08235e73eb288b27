import VigilModels

/// The settings a reload may change without rebuilding anything: thresholds, ensemble weights,
/// roles and canary shares, suppression, explanation length.
struct Tunables: Sendable {
    var threshold: ThresholdSpec
    var weights: [Double]
    var canaryShares: [Double?]
    var roles: [ModelSpec.Role]
    var explain: Int
    var topologyHash: String?
    /// Travels with the roles, so each checkpoint holds the override they came from.
    var rollout: RolloutOverride?

    init(_ topology: Topology) {
        threshold = topology.threshold
        weights = topology.models.map { $0.role == .shadow ? 0 : $0.weight }
        canaryShares = topology.models.map { $0.role == .canary ? ($0.canaryShare ?? 0) : nil }
        roles = topology.models.map(\.role)
        explain = topology.alerts.explain
        topologyHash = topology.configHash
        rollout = topology.rollout
    }
}

extension Worker {
    /// Swaps in a reload's tunables (between items, on the worker's thread).
    func apply(_ tunables: Tunables) {
        threshold.apply(tunables.threshold)
        tracks.apply(tunables.threshold)
        ensemble.apply(weights: tunables.weights)
        canaryShares = tunables.canaryShares
        writer.roles = tunables.roles
        writer.explain = tunables.explain
        writer.topologyHash = tunables.topologyHash
        rollout = tunables.rollout
    }
}
