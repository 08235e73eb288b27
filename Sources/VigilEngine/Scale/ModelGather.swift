/// Every worker's models with the examples each learned from, for the federation to average
/// and publish.
typealias ModelGather = WorkerGather<ModelCopy>

/// One worker's copy of its models: per model in topology order, its version, the model, and
/// its weight (examples learned).
struct ModelCopy: Sendable {
    var versions: [String]
    var models: [ModelSet.Decoded]
    var weights: [Double]
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
                        ModelCopy(
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
