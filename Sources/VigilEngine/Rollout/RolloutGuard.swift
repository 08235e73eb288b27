import Logging
import ServiceLifecycle
import Synchronization
import VigilModels

/// The guard of `guard:` as a service: every `check_every` it reads the models' live figures,
/// and judges each challenger (a model the file declares shadow or canary, still in that role)
/// once it has `min_labels` new labelled events (at a cold start, counted from the first label):
/// against the one active model it replaces, or
/// else against the live ensemble, on the very same events. A failing canary is rolled back; a
/// passing challenger is promoted when `auto_promote` is set. Actions go through
/// `RolloutController`, so they are audited like a command's, by `guard`.
public struct RolloutGuard: Service {
    public let engine: KafkaEngine
    private let clock: EngineClock

    public init(engine: KafkaEngine, clock: EngineClock = .continuous) {
        self.engine = engine
        self.clock = clock
    }

    public func run() async throws {
        var marks: [String: [Int]] = [:]
        var first = true
        while true {
            guard await clock.nextRound(after: engine.topology.rolloutGuard?.checkEvery ?? .seconds(5)) else { return }
            guard let spec = engine.topology.rolloutGuard, engine.phase == .running else { continue }
            // At a cold start the challengers have had their roles since the first event: their
            // judgement counts from label 0, however late the first look comes.
            await check(spec, marks: &marks, fromStart: first && engine.restoredFrom == nil)
            first = false
        }
    }

    /// One look at the figures; `marks` holds, per challenger (version and role), each worker's
    /// labelled count when its judgement began.
    func check(_ spec: GuardSpec, marks: inout [String: [Int]], fromStart: Bool = false) async {
        guard let parts = await engine.rollout.gather() else { return }
        let topology = engine.topology
        let file = engine.reloads.fileTopology
        let versions = engine.modelVersions
        guard versions.count == topology.models.count, parts.allSatisfy({ $0.tracks.count == versions.count })
        else { return }
        for (k, model) in topology.models.enumerated() where model.role == .shadow || model.role == .canary {
            // A model demoted by a promotion is kept warm for a rollback, not judged.
            guard file.models.first(where: { $0.name == model.name })?.role == model.role else { continue }
            let key = "\(versions[k])/\(model.role.rawValue)"
            let totals = parts.map { $0.tracks[k].metrics.total }
            // A new challenger, or one whose figures started afresh (a drift action reset it).
            guard let start = marks[key], start.count == totals.count, !zip(totals, start).contains(where: { $0 < $1 })
            else {
                marks[key] = fromStart && marks[key] == nil ? totals.map { _ in 0 } : totals
                continue  // judged from the next look on
            }
            let counts = zip(totals, start).map { max(0, $0 - $1) }
            let available = counts.reduce(0, +)
            guard available >= spec.minLabels else { continue }
            // Judged on the first `min_labels` labelled events since the mark, whenever the
            // check comes: each worker gives its share of them, oldest first.
            var taken = counts.map { $0 * spec.minLabels / available }
            for w in taken.indices where taken.reduce(0, +) < spec.minLabels && taken[w] < counts[w] { taken[w] += 1 }
            marks[key] = zip(start, taken).map { $0 + $1 }
            let active = topology.models.indices.filter { topology.models[$0].role == .active }
            let replaced = model.replaces.map { names in active.filter { names.contains(topology.models[$0].name) } }
            let baselineModel = (replaced ?? active).count == 1 ? (replaced ?? active)[0] : nil
            var candidate = Entries()
            var baseline = Entries()
            for (w, part) in parts.enumerated() {
                let mine = part.tracks[k].metrics
                candidate.add(mine.entries(from: start[w], count: taken[w]))
                // The baseline saw the same labelled events, the newest last; its numbering may
                // start elsewhere (restored from an older checkpoint section).
                let theirs = baselineModel.map { part.tracks[$0].metrics } ?? part.ensemble
                baseline.add(theirs.entries(from: start[w] + theirs.total - mine.total, count: taken[w]))
            }
            let c = candidate.figure(spec.metric)
            let b = baseline.figure(spec.metric)
            let passes = spec.passes(candidate: c, baseline: b)
            let against = baselineModel.map { topology.models[$0].name } ?? "the active ensemble"
            let reason =
                "\(spec.metric.rawValue) \(text(c)) against \(text(b)) of \(against) over \(candidate.count) labelled events: \(passes ? "passes" : "fails")"
            engine.rollout.recordVerdict(
                GuardVerdict(
                    model: model.name, version: versions[k], role: model.role.rawValue, labelled: candidate.count,
                    candidate: c, baseline: b, against: against, passes: passes))
            do throws(EngineError) {
                if model.role == .canary, !passes, spec.autoRollback {
                    _ = try await engine.rollout.rollback(model.name, by: "guard", reason: reason)
                } else if passes, spec.autoPromote {
                    _ = try await engine.rollout.promote(model.name, by: "guard", reason: reason)
                } else {
                    engine.logger.notice("Guard: \(model.name) \(reason)")
                }
            } catch {
                engine.logger.warning("Guard: \(model.name): \(error)")
            }
        }
    }

    private func text(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "undefined" }

    /// Labelled events gathered over the workers.
    private struct Entries {
        var scores: [Double] = []
        var labels: [Bool] = []
        var alerted: [Bool] = []
        var count: Int { scores.count }

        mutating func add(_ e: (scores: [Double], labels: [Bool], alerted: [Bool])) {
            scores += e.scores
            labels += e.labels
            alerted += e.alerted
        }

        func figure(_ metric: GuardSpec.Metric) -> Double? {
            let r = PrequentialMetrics.report(scores: scores, labels: labels, alerted: alerted)
            switch metric {
            case .rocAUC: return r.rocAUC
            case .averagePrecision: return r.averagePrecision
            case .f1: return r.f1
            case .precision: return r.precision
            case .recall: return r.recall
            }
        }
    }
}

/// The guard's last judgement of a challenger (in `/models` and `/status`).
public struct GuardVerdict: Sendable, Hashable {
    public var model: String
    public var version: String
    public var role: String
    public var labelled: Int
    public var candidate: Double?
    public var baseline: Double?
    /// The baseline's name: a model, or "the active ensemble".
    public var against: String
    public var passes: Bool
    /// Judgements of this challenger so far, and how many it passed.
    public var judged = 1
    public var passed = 0
}
