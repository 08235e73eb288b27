import Foundation
import Logging
import Synchronization
import VigilModels

/// Promotions, rollbacks and the model history of a running engine (the control plane: async,
/// one action at a time, in turn with reloads). Every model keeps running whatever its role: a
/// promoted challenger keeps its learned state, and a model it replaces goes on as a shadow,
/// scoring and learning every event, so a rollback is a swap of roles back, warm, exact, and
/// without rewinding any offset. Each action is applied between batches, made durable by a
/// checkpoint when the topology has them, and audited with every model's figures at the moment.
public final class RolloutController: Sendable {
    private let reloads: ReloadController
    private let requests: IngestRequests
    private let audit: AuditLog
    private let stats: EngineStats
    private let checkpoints: Bool
    private let logger: Logger
    private let versions: @Sendable () -> [String]
    /// Whether the ingest loop serves requests now (not while booting or stopping).
    private let serving: @Sendable () -> Bool
    /// The last figures gathered (served while the engine stops).
    private let last = Mutex<[ModelQuality]>([])
    private let lastArms = Mutex<[ArmQuality]>([])
    private let lastSegments = Mutex<[SegmentReport]>([])
    private let verdicts = Mutex<[String: GuardVerdict]>([:])

    init(
        reloads: ReloadController, requests: IngestRequests, audit: AuditLog, stats: EngineStats, checkpoints: Bool,
        versions: @escaping @Sendable () -> [String], serving: @escaping @Sendable () -> Bool, logger: Logger
    ) {
        self.serving = serving
        self.reloads = reloads
        self.requests = requests
        self.audit = audit
        self.stats = stats
        self.checkpoints = checkpoints
        self.versions = versions
        self.logger = logger
    }

    /// The guard's last judgement of each challenger, by model name.
    public var guardVerdicts: [String: GuardVerdict] { verdicts.withLock { $0 } }

    func recordVerdict(_ v: GuardVerdict) {
        verdicts.withLock {
            var v = v
            let before = $0[v.model].flatMap { $0.version == v.version ? $0 : nil }
            v.judged = (before?.judged ?? 0) + 1
            v.passed = (before?.passed ?? 0) + (v.passes ? 1 : 0)
            $0[v.model] = v
        }
    }

    /// Every promotion and rollback so far, oldest first (restored from the checkpoints).
    public var history: [RolloutEvent] { reloads.override.history }

    /// Every model's live quality, in topology order, gathered from the workers now (the last
    /// figures once the engine is stopping).
    public func quality() async -> [ModelQuality] { await live().models }

    /// Every model's live quality, each experiment arm's figures, and the fairness figures of
    /// each segment field (gathered now).
    public func live() async -> (models: [ModelQuality], arms: [ArmQuality], segments: [SegmentReport]) {
        guard let parts = await gather() else {
            return (last.withLock { $0 }, lastArms.withLock { $0 }, lastSegments.withLock { $0 })
        }
        let topology = reloads.topology
        let arms = topology.experiment.map { ArmQuality.gather($0, parts) } ?? []
        lastArms.withLock { $0 = arms }
        let fields = parts.first?.segments.fields ?? []
        let segments = fields.isEmpty ? [] : SegmentTally.reports(parts.map(\.segments), fields: fields)
        lastSegments.withLock { $0 = segments }
        return (figures(parts), arms, segments)
    }

    private func figures(_ parts: [TrackCopy]) -> [ModelQuality] {
        let topology = reloads.topology
        let versions = versions()
        guard versions.count == topology.models.count else { return last.withLock { $0 } }
        let snapshot = TrackSnapshot(workers: parts.map(\.tracks))
        var out = topology.models.enumerated().map { k, spec in
            snapshot.quality(
                k, name: spec.name, version: versions[k], role: spec.role,
                share: spec.role == .canary ? spec.canaryShare : nil)
        }
        let weights = parts.map(\.weights).filter { $0.count == out.count }
        if !weights.isEmpty {
            for k in out.indices { out[k].ensembleWeight = weights.map { $0[k] }.reduce(0, +) / Double(weights.count) }
        }
        last.withLock { $0 = out }
        return out
    }

    /// The workers' tracks and ensemble metrics, copied at one point of their rings; nil when
    /// the engine no longer serves requests.
    func gather() async -> [TrackCopy]? {
        guard serving(), case .tracks(let gather) = await requests.submit(.gatherTracks) else { return nil }
        return await gather.value()
    }

    /// Makes the challenger `name` active (a model with role shadow or canary, or a `group` of
    /// them); the active models it `replaces` (default: all) become shadows.
    /// - Throws: `.unknownModel`, `.rolloutRefused`, `.stopping`.
    public func promote(_ name: String, by: String, reason: String) async throws(EngineError) -> RolloutEvent {
        let figures = await quality()
        return try await act(by: by, reason: reason, figures: figures) { override, file, inForce, event in
            let targets = inForce.models.filter {
                ($0.name == name || $0.group == name) && ($0.role == .shadow || $0.role == .canary)
            }
            guard !targets.isEmpty else {
                if let m = inForce.models.first(where: { $0.name == name }) {
                    return .failure(
                        EngineError(
                            .rolloutRefused,
                            "\(name) is \(m.role.rawValue); only a shadow or a canary (or a group of them) is promoted")
                    )
                }
                return .failure(EngineError(.unknownModel, "no model or group named '\(name)'"))
            }
            let active = Set(inForce.models.filter { $0.role == .active }.map(\.name))
            let names = Set(targets.map(\.name))
            var demoted = Set<String>()
            for t in targets { demoted.formUnion(t.replaces.map(Set.init) ?? active) }
            demoted = demoted.intersection(active).subtracting(names)
            for m in inForce.models where names.contains(m.name) || demoted.contains(m.name) {
                event.rolesBefore[m.name] = m.role.rawValue
            }
            for n in names { override.set(n, .active, file: file) }
            for n in demoted { override.set(n, .shadow, file: file) }
            event.action = .promote
            event.activated = names.sorted()
            event.deactivated = demoted.sorted()
            return .success(())
        }
    }

    /// Undoes the last promotion (of `name`, when given) that is not undone yet: every model it
    /// touched gets its role from before, with the state it has now (it kept learning as a
    /// shadow). A canary named here stops alerting instead and goes on as a shadow.
    /// - Throws: `.unknownModel`, `.rolloutRefused`, `.stopping`.
    public func rollback(_ name: String?, by: String, reason: String) async throws(EngineError) -> RolloutEvent {
        let figures = await quality()
        return try await act(by: by, reason: reason, figures: figures) { override, file, inForce, event in
            if let name, let m = inForce.models.first(where: { $0.name == name }), m.role == .canary {
                event.action = .canaryRollback
                event.rolesBefore[name] = m.role.rawValue
                event.deactivated = [name]
                override.set(name, .shadow, file: file)
                return .success(())
            }
            if let name, !inForce.models.contains(where: { $0.name == name || $0.group == name }) {
                return .failure(EngineError(.unknownModel, "no model or group named '\(name)'"))
            }
            // The promotion's models by name (its records name versions, `name@hash`).
            func names(_ versions: [String]) -> Set<String> { Set(versions.map { String($0.prefix { $0 != "@" }) }) }
            let wanted = name.map { n in Set(inForce.models.filter { $0.name == n || $0.group == n }.map(\.name)) }
            guard
                let index = override.history.lastIndex(where: { e in
                    e.action == .promote && e.undoneBy == nil
                        && (wanted.map { !$0.isDisjoint(with: names(e.activated)) } ?? true)
                })
            else {
                return .failure(
                    EngineError(
                        .rolloutRefused, "no promotion\(name.map { " of \($0)" } ?? "") to roll back"))
            }
            let promotion = override.history[index]
            let missing = promotion.rolesBefore.keys.filter { n in !file.models.contains { $0.name == n } }
            guard missing.isEmpty else {
                return .failure(
                    EngineError(
                        .rolloutRefused,
                        "promotion \(promotion.sequence) touched \(missing.sorted().joined(separator: ", ")), no longer in the topology"
                    ))
            }
            for (n, raw) in promotion.rolesBefore {
                if let role = ModelSpec.Role(rawValue: raw) { override.set(n, role, file: file) }
            }
            override.history[index].undoneBy = event.sequence
            event.action = .rollback
            event.activated = promotion.deactivated
            event.deactivated = promotion.activated
            event.rolesBefore = Dictionary(
                uniqueKeysWithValues: promotion.rolesBefore.keys.compactMap { n in
                    inForce.models.first { $0.name == n }.map { (n, $0.role.rawValue) }
                })
            return .success(())
        }
    }

    /// Runs one action: `decide` fills in the event and changes the override; the roles that
    /// result go to the workers, a checkpoint makes them durable, and the audit records it.
    private func act(
        by: String, reason: String, figures: [ModelQuality],
        _ decide:
            @escaping @Sendable (inout RolloutOverride, Topology, Topology, inout RolloutEvent) -> Result<
                Void, EngineError
            >
    ) async throws(EngineError) -> RolloutEvent {
        let metrics = Dictionary(figures.map { ($0.name, $0.auditFigures) }, uniquingKeysWith: { $1 })
        let result = await reloads.applyRollout { override, file, inForce in
            var event = RolloutEvent(
                sequence: (override.history.last?.sequence ?? 0) + 1,
                timeMs: Int64(Date().timeIntervalSince1970 * 1000), action: .promote, by: by, reason: reason,
                activated: [], deactivated: [], rolesBefore: [:], metrics: metrics, undoneBy: nil)
            switch decide(&override, file, inForce, &event) {
            case .success:
                let versions = (try? Pipeline.modelVersions(of: file)) ?? []
                let byName = Dictionary(zip(file.models.map(\.name), versions), uniquingKeysWith: { $1 })
                event.activated = event.activated.map { byName[$0] ?? $0 }
                event.deactivated = event.deactivated.map { byName[$0] ?? $0 }
                override.history.append(event)
                return .success(event)
            case .failure(let error): return .failure(error)
            }
        }
        let event: RolloutEvent
        switch result {
        case .success(let e): event = e
        case .failure(let error): throw error
        }
        if checkpoints { await makeDurable() }
        audit.record(event, topology: reloads.topology.name)
        logger.notice(
            "Rollout: \(event.action.rawValue)",
            metadata: [
                "activated": "\(event.activated)", "deactivated": "\(event.deactivated)", "by": "\(by)",
                "reason": "\(reason)",
            ])
        return event
    }

    /// Cuts a checkpoint after the change and waits until it is written or given up (a
    /// checkpoint already under way is waited for, then another is cut).
    private func makeDurable() async {
        for _ in 0..<100 {
            let written = stats.checkpoints
            let failed = stats.checkpointFailures
            let ended: @Sendable (EngineStats) -> Bool = { $0.checkpoints > written || $0.checkpointFailures > failed }
            switch await requests.submit(.checkpoint(.rollout)) {
            case .checkpointStarted:
                _ = await stats.waitUntil(timeout: .seconds(60), ended)
                if stats.checkpoints == written {
                    logger.warning("Rollout not made durable yet: its checkpoint was given up or is slow")
                }
                return
            case .refused(let error) where error.code == .checkpointInProgress:
                _ = await stats.waitUntil(timeout: .seconds(60), ended)
            default:
                logger.warning("Rollout not made durable: no checkpoint could be cut")
                return
            }
        }
    }
}
