import Logging
import Synchronization

/// Decides what a reload does: reads the topology file again, refuses an invalid one and changes
/// that need a restart, and hands the rest to the ingest thread, which applies them between
/// batches (`PipelineTransition`). Every outcome but "no change" is counted and audited. One
/// reload at a time, whoever asks (file watcher, SIGHUP, admin).
final class ReloadController: Sendable {
    private let file: String?
    private let requests: IngestRequests
    let audit: AuditLog
    private let stats: EngineStats
    private let logger: Logger
    /// The topology in force (the file's, with the rollout override's roles), the file's as last
    /// read, and the last outcome (boot included).
    private let state: Mutex<(topology: Topology, file: Topology, last: ReloadOutcome?)>
    /// Promotions and rollbacks, applied over the file at every reload.
    private let rollout: Mutex<RolloutOverride>
    private let turn = AsyncTurn()

    init(
        topology: Topology, file: String?, requests: IngestRequests, audit: AuditLog, stats: EngineStats,
        logger: Logger
    ) {
        state = Mutex((topology, topology, nil))
        rollout = Mutex(RolloutOverride())
        self.file = file
        self.requests = requests
        self.audit = audit
        self.stats = stats
        self.logger = logger
    }

    /// The topology in force.
    var topology: Topology { state.withLock { $0.topology } }
    /// The topology file as last read.
    var fileTopology: Topology { state.withLock { $0.file } }
    /// The promotions and rollbacks in force.
    var override: RolloutOverride { rollout.withLock { $0 } }
    /// The last reload's outcome (boot included).
    var lastOutcome: ReloadOutcome? { state.withLock { $0.last } }

    /// Records the boot (a change from the empty topology) once it is applied.
    func booted(_ change: TopologyChange, restored: UInt64?, override: RolloutOverride?) {
        if let override {
            rollout.withLock { $0 = override }
            state.withLock { $0.topology = override.effective($0.file) }
        }
        let outcome = ReloadOutcome(
            source: .boot, result: .applied, change: change,
            reason: restored.map { "restored checkpoint \($0)" } ?? "cold start", topology: topology.name)
        state.withLock { $0.last = outcome }
        audit.record(outcome)
    }

    /// The ingest thread applied `new` (a tunable or structural change) read from `file`.
    func installed(_ new: Topology, file: Topology) {
        state.withLock {
            $0.topology = new
            $0.file = file
        }
    }

    /// Applies a promotion or rollback, in turn with reloads: `decide` gets a copy of the
    /// override to change, the file's topology and the topology in force, and returns the event
    /// it recorded; the roles that result go to the workers between batches (a tunable change),
    /// and the override is kept once they are in force.
    func applyRollout(
        _ decide:
            @Sendable (inout RolloutOverride, _ file: Topology, _ inForce: Topology) -> Result<
                RolloutEvent, EngineError
            >
    ) async -> Result<RolloutEvent, EngineError> {
        await turn.run {
            let (current, file) = state.withLock { ($0.topology, $0.file) }
            var override = rollout.withLock { $0 }
            let event: RolloutEvent
            switch decide(&override, file, current) {
            case .success(let e): event = e
            case .failure(let error): return .failure(error)
            }
            let new = override.effective(file)
            let change = TopologyChange.between(current, new)
            switch await requests.submit(.apply(new, change, file: file)) {
            case .applied:
                rollout.withLock { $0 = override }
                return .success(event)
            case .refused(let error): return .failure(error)
            case .checkpointStarted, .tracks, .models: fatalError("\(#function): a reply of another request")
            }
        }
    }

    /// Reads the topology file again and applies what changed; see the type's description.
    func reload(source: ReloadOutcome.Source) async -> ReloadOutcome {
        await turn.run {
            let outcome = await decide(source: source)
            switch outcome.result {
            case .unchanged:
                // A file saved as it was, or read again after an admin reload.
                logger.debug("Topology reloaded: no change", metadata: ["source": "\(source.rawValue)"])
                return outcome
            case .applied: stats.reloaded(applied: true)
            case .refused, .invalid: stats.reloaded(applied: false)
            }
            state.withLock { $0.last = outcome }
            audit.record(outcome)
            return outcome
        }
    }

    private func decide(source: ReloadOutcome.Source) async -> ReloadOutcome {
        let current = topology
        func outcome(_ result: ReloadOutcome.Result, _ change: TopologyChange, _ reason: String, name: String? = nil)
            -> ReloadOutcome
        {
            ReloadOutcome(
                source: source, result: result, change: change, reason: reason, topology: name ?? current.name)
        }
        guard let file else {
            return outcome(.invalid, TopologyChange(items: []), "the engine was not started from a file")
        }
        let fileNew: Topology
        do {
            fileNew = try TopologyLoader.load(path: file)
            _ = try Pipeline.modelVersions(of: fileNew)
        } catch {
            return outcome(
                .invalid, TopologyChange(items: []), "invalid topology; the running configuration is kept: \(error)")
        }
        let new = rollout.withLock { $0 }.effective(fileNew)
        if !new.models.contains(where: { $0.role == .active }) {
            return outcome(
                .invalid, TopologyChange(items: []),
                "with the promotions in force no model would be active; the running configuration is kept")
        }
        let change = TopologyChange.between(current, new)
        guard let kind = change.kind else { return outcome(.unchanged, change, "no change") }
        if kind == .restart {
            let paths = change.items.filter { $0.kind == .restart }.map(\.path)
            return outcome(
                .refused, change,
                "needs a restart: \(paths.joined(separator: ", ")) cannot change while running; the running configuration is kept"
            )
        }
        switch await requests.submit(.apply(new, change, file: fileNew)) {
        case .applied:
            let how =
                kind == .tunable
                ? "swapped in between batches" : "rebuilt from a checkpoint (unchanged windows and models kept)"
            return outcome(.applied, change, how, name: new.name)
        case .refused(let error):
            return outcome(.refused, change, error.description)
        case .checkpointStarted, .tracks, .models:
            fatalError("\(#function): a checkpoint reply to a reload")
        }
    }
}
