import Foundation
import Synchronization
import VigilCore
import VigilModels

extension Pipeline {
    /// Cuts the input here for a checkpoint: each worker captures its state when it reaches this
    /// point of its ring, so the states cover exactly the records submitted so far. Returns at
    /// once; `CapturedState.wait()` gives the states.
    public func cut() -> CapturedState {
        let captured = CapturedState(workers: workerCount, keyed: captureKeyedStages())
        for ring in rings {
            _ = ring.push(
                .control { worker in
                    let start = ContinuousClock.now
                    let state = worker.capture()
                    captured.store(worker.shard, state, took: ContinuousClock.now - start)
                })
        }
        return captured
    }

    /// The states of stopped workers (after `finish()`), or of workers not started yet.
    func captureStopped() -> [WorkerState] {
        var states = [WorkerState](repeating: WorkerState(), count: workerCount)
        let box = Mutex(states)
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let s = workers[i].capture()
            box.withLock { $0[i] = s }
        }
        states = box.withLock { $0 }
        if let keyed = captureKeyedStages() { states[0].sections.append((Self.keyedSection, keyed)) }
        return states
    }

    /// Gives every worker a spare buffer big enough for its windows (with room to grow), its
    /// pages faulted in, so the next capture only copies. Any thread but the workers'.
    func warmSpareBuffers() {
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let w = workers[i]
            let wanted = w.gauges.entities.load(ordering: .relaxed) * plan.rowBytes * 11 / 10 + (1 << 20)
            let current = w.spareFeatureBuffer.withLock { $0.capacity }
            guard current < wanted else { return }
            let fresh = [UInt8](unsafeUninitializedCapacity: wanted) { buffer, initialized in
                HugePages.advise(UnsafeMutableRawPointer(buffer.baseAddress), count: wanted)
                // Touch every page now, here, instead of in the worker during the cut.
                var page = 0
                while page < wanted {
                    buffer[page] = 0
                    page += 4096
                }
                initialized = 0
            }
            w.spareFeatureBuffer.withLock { $0 = fresh }
        }
    }

    /// Hands the feature sections of an encoded checkpoint back to their workers, whose next
    /// capture reuses their memory.
    func recycle(_ states: [WorkerState]) {
        for (worker, state) in zip(workers, states) {
            if let bytes = state.section("features") { worker.spareFeatureBuffer.withLock { $0 = bytes } }
        }
    }

    /// Swaps in `topology`'s tunables between batches (thresholds, weights, roles, explanation
    /// length); the models and windows are untouched.
    func apply(_ tunables: Tunables) {
        appliedConfigHash.withLock { $0 = tunables.topologyHash }
        for ring in rings { _ = ring.push(.control { $0.apply(tunables) }) }
    }

    /// Loads a checkpoint into the workers before `start()`; all workers or none.
    /// - Returns: what was restored and what starts cold (the same for every worker).
    func restore(_ stored: EngineCheckpoint) throws(CheckpointError) -> Worker.RestoreReport {
        precondition(!started, "restore before start")
        let (checkpoint, migrated) = stored.migrated(to: topology.models, planSignature: plan.signature)
        // Written by as many workers: worker i continues old worker i. Otherwise each worker
        // continues old worker i mod n (ensemble memory, metrics, rollout), takes the entities
        // it now owns from all of them and merges their models: never a silent cold start.
        let old = checkpoint.workers
        let resharding = old.count != workerCount
        let results = Mutex([Result<Worker.RestoreReport, CheckpointError>?](repeating: nil, count: workerCount))
        DispatchQueue.concurrentPerform(iterations: workerCount) { i in
            let r = Result { () throws(CheckpointError) in
                let own = i % old.count
                guard resharding else {
                    return try workers[i].restore(old[own], planSignature: checkpoint.planSignature)
                }
                var state = old[own]
                // Windows come from all old workers below; waiting events are keyed by worker.
                state.sections.removeAll { $0.name == "features" || $0.name == "labels" }
                var report = try workers[i].restore(state, planSignature: checkpoint.planSignature)
                report.cold.removeAll { $0 == "windows" }
                let merged = try workers[i].reshard(
                    from: old, continuing: own, workers: workerCount, planSignature: checkpoint.planSignature)
                if !merged.contains(where: { $0.hasPrefix("windows") }) { report.cold.append("windows") }
                if workers[i].joinsLabels { report.cold.append("waiting events (written by \(old.count) workers)") }
                report.restored += merged
                return report
            }
            results.withLock { $0[i] = r }
        }
        var report = Worker.RestoreReport()
        for (i, r) in results.withLock({ $0 }).enumerated() {
            switch r! {
            case .success(let rep): if i == 0 { report = rep }
            case .failure(let e): throw e
            }
        }
        report.migrated = migrated
        if !builder.keyedStages.isEmpty {
            // The plan's signature covers the keyed stages too: same plan, same stages.
            if checkpoint.planSignature == plan.signature, try restoreKeyedStages(from: checkpoint.workers[0]) {
                report.restored.append("keyed windows")
            } else {
                report.cold.append("keyed windows")
            }
        }
        for w in workers { w.gauges.publish(extractor: w.extractor, threshold: w.threshold.current) }
        return report
    }
}
