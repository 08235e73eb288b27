/// Which checkpoint a structural change loads, in which order, and what happens when none does:
/// a pure value that answers with the next step, so the choice is tested without a broker.
///
/// - Boot: the newest stored checkpoint first; the older ones are read only if it does not load
///   (a checkpoint is hundreds of records); with none that loads, a cold start.
/// - Boot with `--restore SEQUENCE` (a rollback): that checkpoint or nothing; if it is not kept
///   or does not load, the engine does not start.
/// - Structural reload: the state just taken from the running pipeline, else a cold start.
struct RestorePlan: Sendable {
    /// A checkpoint that may be loaded.
    enum Candidate: Sendable {
        /// Taken from the running pipeline (reload).
        case running(EngineCheckpoint)
        /// Read from the store (boot); decoded only when its turn comes.
        case stored(CheckpointStore.Stored)

        var sequence: UInt64? {
            if case .stored(let s) = self { return s.sequence }
            return nil
        }
    }

    /// What to do next.
    enum Step: Sendable {
        /// Read the store's newest `limit` checkpoints (nil: all it keeps), then call `found`.
        case scan(limit: Int?)
        /// Try this one; call `next()` again if it does not load.
        case load(Candidate)
        /// Start with empty windows and models.
        case coldStart(reason: String)
        /// Do not start.
        case fail(EngineError)
    }

    private enum Mode: Sendable {
        case boot(hasStore: Bool, requested: UInt64?)
        case rebuild(EngineCheckpoint)
    }

    private enum Scanned: Sendable {
        case nothing, newest, all
    }

    private let mode: Mode
    private var scanned = Scanned.nothing
    private var candidates: [Candidate] = []
    private var tried = Set<UInt64>()
    private var triedRunning = false

    /// Boot: `hasStore` when the topology has checkpoints; `requested` is `--restore`'s sequence.
    init(bootWithStore hasStore: Bool, requested: UInt64? = nil) {
        mode = .boot(hasStore: hasStore, requested: requested)
    }

    /// A structural reload, from the state just taken.
    init(rebuildFrom taken: EngineCheckpoint) {
        mode = .rebuild(taken)
    }

    /// The checkpoints a scan returned, newest first.
    mutating func found(_ stored: [CheckpointStore.Stored]) {
        var fresh = stored.filter { !tried.contains($0.sequence) }
        if case .boot(_, let requested?) = mode { fresh = fresh.filter { $0.sequence == requested } }
        candidates = fresh.map(Candidate.stored)
    }

    mutating func next() -> Step {
        switch mode {
        case .rebuild(let taken):
            if triedRunning { return .coldStart(reason: "the running state does not fit the new topology") }
            triedRunning = true
            return .load(.running(taken))
        case .boot(false, _):
            return .coldStart(reason: "no checkpoints configured")
        case .boot(true, let requested?):
            if case .nothing = scanned {
                scanned = .all
                return .scan(limit: nil)
            }
            if let candidate = take() { return .load(candidate) }
            return .fail(
                EngineError(
                    .restoreFailed,
                    tried.isEmpty
                        ? "checkpoint \(requested) is not among those kept (see vigil checkpoints list)"
                        : "checkpoint \(requested) does not load (the log says why); the engine does not start"))
        case .boot(true, nil):
            if let candidate = take() { return .load(candidate) }
            switch scanned {
            case .nothing:
                scanned = .newest
                return .scan(limit: 1)
            case .newest:
                // The newest did not load: read the older ones kept.
                scanned = .all
                return .scan(limit: nil)
            case .all:
                return .coldStart(reason: tried.isEmpty ? "no checkpoint stored" : "no stored checkpoint loads")
            }
        }
    }

    private mutating func take() -> Candidate? {
        guard !candidates.isEmpty else { return nil }
        let candidate = candidates.removeFirst()
        if let sequence = candidate.sequence { tried.insert(sequence) }
        return candidate
    }
}
