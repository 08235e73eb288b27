import Synchronization

/// What the control plane asks of the ingest thread, which alone may touch the pipeline: it
/// serves requests between two batches.
enum IngestRequest: Sendable {
    /// Apply a validated, classified topology change: the topology in force then, and the file's
    /// topology it comes from (they differ by the rollout override's roles).
    case apply(Topology, TopologyChange, file: Topology)
    /// Cut a checkpoint now (`POST /checkpoint`).
    case checkpoint(CheckpointReason)
    /// Copy every model's live quality (`/status`, `/metrics`, the guard).
    case gatherTracks
    /// Copy every worker's models (the federation).
    case gatherModels
    /// Every worker takes these averages, by model version, keeping what it learned since its
    /// snapshot (per worker, by version) was gathered (the federation).
    case adoptModels([String: ModelSet.Decoded], snapshots: [[String: ModelSet.Decoded]])
}

/// The ingest thread's answer.
enum IngestReply: Sendable {
    /// The change is in force.
    case applied
    /// The checkpoint is cut; it is written in the background.
    case checkpointStarted
    /// The workers' copies, filled in as each reaches them.
    case tracks(TrackGather)
    /// The workers' models, filled in as each reaches them.
    case models(ModelGather)
    case refused(EngineError)
}

/// The typed request channel between the control plane (async) and the ingest thread (a
/// dedicated thread that must never wait for it): requests queue under a mutex, the ingest
/// thread takes them between batches and answers each through its continuation.
final class IngestRequests: Sendable {
    /// A request waiting for the ingest thread, with the continuation its answer resumes.
    struct Pending: Sendable {
        let request: IngestRequest
        fileprivate let continuation: CheckedContinuation<IngestReply, Never>

        func answer(_ reply: IngestReply) { continuation.resume(returning: reply) }
    }

    private struct State {
        var queue: [Pending] = []
        /// Set when the engine stops: later requests are refused at once.
        var closed: EngineError?
    }

    private let state = Mutex(State())

    /// Queues `request` and waits for the ingest thread's answer.
    func submit(_ request: IngestRequest) async -> IngestReply {
        await withCheckedContinuation { (c: CheckedContinuation<IngestReply, Never>) in
            let refusal = state.withLock { s -> EngineError? in
                if let closed = s.closed { return closed }
                s.queue.append(Pending(request: request, continuation: c))
                return nil
            }
            if let refusal { c.resume(returning: .refused(refusal)) }
        }
    }

    /// The requests queued so far (ingest thread, between batches).
    func take() -> [Pending] {
        state.withLock { s in
            defer { s.queue.removeAll() }
            return s.queue
        }
    }

    /// Refuses what is queued and everything asked later with `error` (the engine stops).
    func close(_ error: EngineError) {
        let left = state.withLock { s -> [Pending] in
            s.closed = error
            defer { s.queue.removeAll() }
            return s.queue
        }
        for p in left { p.answer(.refused(error)) }
    }
}
