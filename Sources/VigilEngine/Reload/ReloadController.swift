import Logging
import Synchronization

/// Decides what a reload does: reads the topology file again, refuses an invalid one and changes
/// that need a restart, and hands the rest to the ingest thread, which applies them between
/// batches (`PipelineTransition`). Every outcome but "no change" is counted and audited. One
/// reload at a time, whoever asks (file watcher, SIGHUP, admin).
final class ReloadController: Sendable {
    private let file: String?
    private let requests: IngestRequests
    private let audit: AuditLog
    private let stats: EngineStats
    private let logger: Logger
    /// The topology in force and the last outcome (boot included).
    private let state: Mutex<(topology: Topology, last: ReloadOutcome?)>
    private let turn = AsyncTurn()

    init(
        topology: Topology, file: String?, requests: IngestRequests, audit: AuditLog, stats: EngineStats,
        logger: Logger
    ) {
        state = Mutex((topology, nil))
        self.file = file
        self.requests = requests
        self.audit = audit
        self.stats = stats
        self.logger = logger
    }

    /// The topology in force.
    var topology: Topology { state.withLock { $0.topology } }
    /// The last reload's outcome (boot included).
    var lastOutcome: ReloadOutcome? { state.withLock { $0.last } }

    /// Records the boot (a change from the empty topology) once it is applied.
    func booted(_ change: TopologyChange, restored: UInt64?) {
        let outcome = ReloadOutcome(
            source: .boot, result: .applied, change: change,
            reason: restored.map { "restored checkpoint \($0)" } ?? "cold start", topology: topology.name)
        state.withLock { $0.last = outcome }
        audit.record(outcome)
    }

    /// The ingest thread applied `new` (a tunable or structural change).
    func installed(_ new: Topology) {
        state.withLock { $0.topology = new }
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
        let new: Topology
        do {
            new = try TopologyLoader.load(path: file)
            _ = try Pipeline.modelVersions(of: new)
        } catch {
            return outcome(
                .invalid, TopologyChange(items: []), "invalid topology; the running configuration is kept: \(error)")
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
        switch await requests.submit(.apply(new, change)) {
        case .applied:
            let how =
                kind == .tunable
                ? "swapped in between batches" : "rebuilt from a checkpoint (unchanged windows and models kept)"
            return outcome(.applied, change, how, name: new.name)
        case .refused(let error):
            return outcome(.refused, change, error.description)
        case .checkpointStarted:
            fatalError("\(#function): a checkpoint reply to a reload")
        }
    }
}
