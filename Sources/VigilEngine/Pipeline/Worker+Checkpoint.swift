import VigilCore
import VigilFeatures
import VigilModels

extension Worker {
    /// This worker's whole state as checkpoint sections (on its own thread, between items, or
    /// after it stopped).
    func capture() -> WorkerState {
        var state = WorkerState()
        var mark = ContinuousClock.now
        func lap(_ name: String) {
            let now = ContinuousClock.now
            state.captureTimes.append((name, now - mark))
            mark = now
        }
        state.entities = extractor.entityCount
        // Into the memory of the previous checkpoint's feature section, when it came back.
        let spare = spareFeatureBuffer.withLock { b in
            let taken = b
            b = []
            return taken
        }
        var features = BinaryWriter(reusing: spare, capacity: extractor.entityCount * extractor.plan.rowBytes + 1024)
        extractor.encodeState(into: &features)
        state.sections.append(("features", features.bytes))
        lap("features")
        for k in 0..<models.count {
            var model = BinaryWriter()
            models.encode(k, into: &model)
            state.sections.append(("model:" + models.versions[k], model.bytes))
            var memory = BinaryWriter()
            ensemble.encode(model: k, into: &memory)
            state.sections.append(("ensemble:" + models.versions[k], memory.bytes))
            var quality = BinaryWriter()
            tracks.tracks[k].encode(into: &quality)
            state.sections.append(("quality:" + models.versions[k], quality.bytes))
        }
        if let learned = ensemble.encodeLearned(names: models.versions) { state.sections.append(("weights", learned)) }
        lap("models")
        var threshold = BinaryWriter()
        self.threshold.encode(into: &threshold)
        state.sections.append(("threshold", threshold.bytes))
        lap("threshold")
        if joinsLabels {
            var labels = BinaryWriter()
            join.encode(into: &labels)
            state.sections.append(("labels", labels.bytes))
            if segments.count > 0 {
                var counts = BinaryWriter()
                segments.tally.encode(into: &counts)
                state.sections.append(("segments", counts.bytes))
            }
            lap("labels")
        }
        var quality = BinaryWriter()
        metrics.encode(into: &quality)
        state.sections.append(("metrics", quality.bytes))
        lap("metrics")
        if let rollout { state.sections.append(("rollout", rollout.encoded)) }
        for (name, bytes) in retired { state.sections.append(("retired:" + name, bytes)) }
        return state
    }

    /// The sections of the model versions in `state` that are not among `keeping`: first those
    /// the state held as current (just retired), then those it had retired already; at most
    /// `retiredVersions` versions.
    static func retiring(_ state: WorkerState, keeping: Set<String>) -> [(name: String, bytes: [UInt8])] {
        var order: [String] = []
        for prefix in ["model:", "retired:model:"] {
            for s in state.sections where s.name.hasPrefix(prefix) {
                let version = String(s.name.dropFirst(prefix.count))
                if !keeping.contains(version), !order.contains(version) { order.append(version) }
            }
        }
        var out: [(name: String, bytes: [UInt8])] = []
        for version in order.prefix(retiredVersions) {
            for part in ["model:", "ensemble:", "quality:"] {
                if let bytes = state.section(part + version) ?? state.section("retired:" + part + version) {
                    out.append((part + version, bytes))
                }
            }
        }
        return out
    }

    /// Completes a restore from a checkpoint written by another number of workers (after
    /// `restore` loaded the state of the old worker this one continues):
    /// - windows: every entity this worker now owns, from all the old workers' feature
    ///   sections, its row copied as it was (`FeatureExtractor.restoreState(merging:keep:)`);
    /// - models and threshold: the other old workers' replicas merged in, weighted by the
    ///   entities each held (their share of the stream), as FedAvg weights by examples.
    /// Nothing is changed if a section does not decode.
    func reshard(from old: [WorkerState], continuing own: Int, workers: Int, planSignature: UInt64)
        throws(CheckpointError) -> [String]
    {
        var merged: [String] = []
        var decoded: [(k: Int, model: ModelSet.Decoded, weight: Double)] = []
        var thresholds: [AlertThreshold] = []
        var total = Double(old[own].entities + 1)
        for (j, peer) in old.enumerated() where j != own {
            let share = Double(peer.entities + 1)
            total += share
            for k in 0..<models.count {
                guard let bytes = peer.section("model:" + models.versions[k]) else { continue }
                var r = BinaryReader(bytes)
                decoded.append((k, try models.decode(k, from: &r), share / total))
            }
            if let bytes = peer.section("threshold") {
                var r = BinaryReader(bytes)
                thresholds.append(try AlertThreshold(threshold.spec, decoding: &r))
            }
        }
        if planSignature == extractor.plan.signature {
            let shard = self.shard
            do {
                try extractor.restoreState(merging: old.compactMap { $0.section("features") }) {
                    StableHash.shard(of: $0, count: workers) == shard
                }
            } catch {
                throw CheckpointError(.corrupt, "feature state: \(error.reason)")
            }
            merged.append("windows re-sharded from \(old.count) workers")
        }
        for (k, model, weight) in decoded { models.merge(k, with: model, weight: weight) }
        if !decoded.isEmpty { merged.append("models merged from \(old.count) workers") }
        for peer in thresholds { threshold.merge(scoresOf: peer) }
        return merged
    }

    /// What a restore took from a checkpoint and what starts cold.
    struct RestoreReport: Sendable {
        var restored: [String] = []
        var cold: [String] = []
        /// Model versions renamed from an older checkpoint format (`old → new`).
        var migrated: [String] = []
        /// The rollout override in force when the checkpoint was cut.
        var rollout: RolloutOverride?
    }

    /// Loads `state` into this fresh worker. Sections that belong to other features (windows,
    /// waiting events) or to other model versions are left cold, as a structural change asks;
    /// a section that should fit and does not decode throws, and nothing is changed then.
    func restore(_ state: WorkerState, planSignature: UInt64) throws(CheckpointError) -> RestoreReport {
        var report = RestoreReport()
        let samePlan = planSignature == extractor.plan.signature
        // Decode everything first, then apply: a damaged section leaves the worker untouched.
        var decodedModels: [(Int, ModelSet.Decoded)] = []
        var memories: [(Int, Ensemble.ModelMemory)] = []
        var qualities: [(Int, ModelTracks.Track)] = []
        // A version's section, current or retired (a version the topology had before).
        func stored(_ prefix: String, _ version: String) -> [UInt8]? {
            state.section(prefix + version) ?? state.section("retired:" + prefix + version)
        }
        for k in 0..<models.count {
            let version = models.versions[k]
            if let bytes = stored("model:", version) {
                var r = BinaryReader(bytes)
                decodedModels.append((k, try models.decode(k, from: &r)))
                report.restored.append(
                    "model " + version + (state.section("model:" + version) == nil ? " (retired)" : ""))
            } else {
                report.cold.append("model " + version)
            }
            if let bytes = stored("ensemble:", version) {
                var r = BinaryReader(bytes)
                memories.append((k, try Ensemble.ModelMemory(decoding: &r)))
            }
            if let bytes = stored("quality:", version) {
                var r = BinaryReader(bytes)
                qualities.append((k, try ModelTracks.Track(tracks.tracks[k].threshold.spec, decoding: &r)))
            }
        }
        // Models the checkpoint did not know start from coefficient 0.
        var decodedWeights: LearnedWeights?
        if let bytes = state.section("weights") {
            decodedWeights = try ensemble.decodeLearned(names: models.versions, bytes)
        }
        var decodedThreshold: AlertThreshold?
        if let bytes = state.section("threshold") {
            var r = BinaryReader(bytes)
            decodedThreshold = try AlertThreshold(threshold.spec, decoding: &r)
        }
        var decodedMetrics: PrequentialMetrics?
        if let bytes = state.section("metrics") {
            var r = BinaryReader(bytes)
            decodedMetrics = try PrequentialMetrics(window: metrics.window, decoding: &r)
        }
        if let bytes = state.section("rollout") {
            // Written by this engine as JSON; unreadable means damaged, and the checkpoint is.
            do {
                report.rollout = try RolloutOverride(decoding: bytes)
            } catch {
                throw CheckpointError(.corrupt, "rollout section: \(error)")
            }
        }
        if samePlan, let bytes = state.section("features") {
            var r = BinaryReader(bytes)
            do {
                try extractor.restoreState(from: &r)
            } catch {
                throw CheckpointError(.corrupt, "feature state: \(error.reason)")
            }
            report.restored.append("windows")
        } else {
            report.cold.append("windows")
        }
        // Counts for other segment fields start afresh, and so do the segments of waiting events.
        var decodedSegments: SegmentTally?
        if segments.count > 0, let bytes = state.section("segments") {
            var r = BinaryReader(bytes)
            decodedSegments = try SegmentTally.decode(&r, fields: segments.tally.fields)
        }
        if samePlan, joinsLabels, let bytes = state.section("labels") {
            var r = BinaryReader(bytes)
            try join.restore(from: &r, keepSegments: decodedSegments != nil)
            report.restored.append("waiting events")
        }
        if let decodedSegments { segments.tally = decodedSegments }
        for (k, model) in decodedModels { models.replace(k, with: model) }
        for (k, memory) in memories { ensemble.restore(model: k, memory) }
        if let decodedWeights { ensemble.restoreLearned(decodedWeights) }
        for (k, quality) in qualities { tracks.restore(k, quality) }
        retired = Self.retiring(state, keeping: Set(models.versions))
        if let decodedThreshold {
            threshold = decodedThreshold
            report.restored.append("threshold")
        }
        if let decodedMetrics { metrics = decodedMetrics }
        return report
    }
}
