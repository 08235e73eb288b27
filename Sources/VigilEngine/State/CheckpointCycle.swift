/// Why a checkpoint was taken; stored with it and shown by `vigil checkpoints list`.
public enum CheckpointReason: String, Sendable, CaseIterable {
    /// `checkpoints.every` passed.
    case interval
    /// `checkpoints.every_events` events were read.
    case events
    /// `POST /checkpoint`.
    case admin
    /// Before a structural reload rebuilt the pipeline.
    case reload
    /// At a graceful stop.
    case shutdown
    /// After a promotion or rollback, to make it durable.
    case rollout
}

/// When to checkpoint and what the checkpoint is doing, as a state machine that returns actions
/// (`CheckpointCoordinator` decides under its lock and acts after releasing it).
///
/// ```
/// idle ──due──► warming ──warmed──► cutting ──tick──► writing ──written──► idle
///   └──────────────────── request (admin) ──────────────┘
/// ```
/// - warming: the checkpoint thread grows the workers' spare buffers (off the workers);
/// - cutting: warm, waiting for the ingest thread to cut between two batches;
/// - writing: cut; the checkpoint thread waits for the outputs, encodes and publishes.
struct CheckpointCycle: Sendable {
    enum State: Equatable, Sendable {
        case idle
        case warming(CheckpointReason)
        case cutting(CheckpointReason)
        case writing(CheckpointReason)
    }

    /// What the caller must do now.
    enum Action: Equatable, Sendable {
        case none
        /// Warm the spare buffers on the checkpoint thread, then call `warmed()`.
        case warm(CheckpointReason)
        /// Cut now, on the ingest thread, and write on the checkpoint thread; then `written(saved:)`.
        case cut(CheckpointReason)
    }

    let every: Duration
    let everyEvents: Int?
    private(set) var state = State.idle
    /// When the last cut was taken (or the cycle started), on the engine's clock.
    private(set) var lastCut: Duration
    private(set) var eventsSinceCut = 0
    /// Records were read since the last cut: without them there is nothing new to save.
    private(set) var dirty = false

    init(every: Duration, everyEvents: Int?, now: Duration) {
        self.every = every
        self.everyEvents = everyEvents
        lastCut = now
    }

    /// A batch of `events` source events (and possibly labels) was read.
    mutating func read(events: Int) {
        dirty = true
        eventsSinceCut += events
    }

    /// Between two batches, on the ingest thread: starts a due checkpoint, or cuts a warm one.
    mutating func tick(now: Duration) -> Action {
        switch state {
        case .idle:
            guard dirty else { return .none }
            let byEvents = everyEvents.map { eventsSinceCut >= $0 } ?? false
            guard byEvents || now - lastCut >= every else { return .none }
            let reason: CheckpointReason = byEvents ? .events : .interval
            state = .warming(reason)
            return .warm(reason)
        case .cutting(let reason):
            return cut(reason, now: now)
        case .warming, .writing:
            return .none
        }
    }

    /// The spare buffers are warm (checkpoint thread).
    mutating func warmed() {
        guard case .warming(let reason) = state else { fatalError("\(#function) in \(state)") }
        state = .cutting(reason)
    }

    /// A checkpoint asked for now (admin, reload, shutdown): cut at once unless one is under
    /// way. `superseding`: a due checkpoint that is warm but not cut yet gives way to this one.
    mutating func request(_ reason: CheckpointReason, now: Duration, superseding: Bool = false) -> Action {
        switch state {
        case .idle: return cut(reason, now: now)
        case .cutting where superseding: return cut(reason, now: now)
        case .cutting, .warming, .writing: return .none
        }
    }

    /// The checkpoint was published (`saved`), or given up (checkpoint thread). One given up
    /// leaves the cycle dirty: what it held is still unsaved, so the next interval (and a graceful
    /// stop) writes again even if nothing new is read.
    mutating func written(saved: Bool = true) {
        guard case .writing = state else { fatalError("\(#function) in \(state)") }
        state = .idle
        if !saved { dirty = true }
    }

    private mutating func cut(_ reason: CheckpointReason, now: Duration) -> Action {
        state = .writing(reason)
        lastCut = now
        eventsSinceCut = 0
        dirty = false
        return .cut(reason)
    }
}
