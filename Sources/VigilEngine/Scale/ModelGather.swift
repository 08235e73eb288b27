import Synchronization

/// Every worker's models with the examples each learned from, copied when each worker reaches
/// the same point of its ring, for the federation to average and publish.
final class ModelGather: Sendable {
    /// One worker's copy: per model in topology order, its version, the model, its weight.
    struct Part: Sendable {
        var versions: [String]
        var models: [ModelSet.Decoded]
        var weights: [Double]
    }

    private let parts: Mutex<[Part?]>
    private let done = AsyncCondition()

    init(workers: Int) {
        parts = Mutex(Array(repeating: nil, count: workers))
    }

    func store(_ shard: Int, _ part: Part) {
        parts.withLock { $0[shard] = part }
        done.signal()
    }

    /// The parts, once every worker has given its own; nil when the task is cancelled first.
    func value() async -> [Part]? {
        guard await done.wait(until: { self.parts.withLock { $0.allSatisfy { $0 != nil } } }) else { return nil }
        return parts.withLock { $0.compactMap { $0 } }
    }
}

extension Pipeline {
    /// Copies every worker's models (ingest thread). Cheap for the workers: the copies share
    /// storage until a worker next learns.
    func gatherModels() -> ModelGather {
        let gather = ModelGather(workers: workerCount)
        for ring in rings {
            _ = ring.push(
                .control { worker in
                    let models = worker.models
                    gather.store(
                        worker.shard,
                        ModelGather.Part(
                            versions: models.versions, models: (0..<models.count).map { models.model($0) },
                            weights: (0..<models.count).map { models.examples($0) }))
                })
        }
        return gather
    }

    /// Every worker takes the averages (by model version), keeping what it learned since its
    /// copy in `snapshots` (per worker, by version) was made (ingest thread); a model whose
    /// version changed since is left as it is.
    func adoptModels(_ averages: [String: ModelSet.Decoded], snapshots: [[String: ModelSet.Decoded]]) {
        for (w, ring) in rings.enumerated() {
            let mine = w < snapshots.count ? snapshots[w] : [:]
            _ = ring.push(
                .control { worker in
                    for (m, version) in worker.models.versions.enumerated() {
                        if let average = averages[version], let snapshot = mine[version] {
                            worker.models.adopt(m, average, since: snapshot)
                        }
                    }
                })
        }
    }
}
