import VigilCore
import VigilFeatures
import VigilModels

extension Pipeline {
    /// The checkpoint section of the keyed feature stages, kept with worker 0's state.
    static let keyedSection = "keyed-features"

    /// The keyed stages' state, encoded (nil without keyed features). Ingest thread, between two
    /// batches (so it matches the cut the workers make), or when the pipeline is stopped.
    func captureKeyedStages() -> [UInt8]? {
        let stages = builder.keyedStages
        guard !stages.isEmpty else { return nil }
        var out = BinaryWriter()
        out.write(stages.count)
        for stage in stages {
            out.write(stage.stage.key)
            out.write(stage.stage.plan.signature)
            // Length-prefixed: a feature-state record runs to the end of its reader.
            var state = BinaryWriter()
            stage.extractor.encodeState(into: &state)
            out.write(state.bytes.count)
            state.bytes.withUnsafeBytes { out.write(raw: $0) }
        }
        return out.bytes
    }

    /// Restores the keyed stages from worker 0's state of a checkpoint whose plan is this one's:
    /// all or none. Returns whether they were restored.
    func restoreKeyedStages(from state: WorkerState) throws(CheckpointError) -> Bool {
        let stages = builder.keyedStages
        guard !stages.isEmpty, let bytes = state.section(Self.keyedSection) else { return false }
        var r = BinaryReader(bytes)
        do throws(VigilError) {
            let count = try r.int(in: 0...1024, "keyed stages")
            guard count == stages.count else {
                throw VigilError(.malformedInput, "\(count) keyed stages, the topology has \(stages.count)")
            }
            var decoded: [[UInt8]] = []
            for stage in stages {
                let key = try r.string()
                let signature = try r.uint64()
                guard key == stage.stage.key, signature == stage.stage.plan.signature else {
                    throw VigilError(.malformedInput, "keyed stage '\(key)' does not match '\(stage.stage.key)'")
                }
                // Checked first, applied after: a damaged stage leaves all of them untouched.
                let length = try r.int(in: 0...r.remaining, "keyed stage bytes")
                let part = try r.values(length, of: UInt8.self)
                var check = BinaryReader(part)
                try stage.extractor.checkState(from: &check)
                decoded.append(part)
            }
            for (stage, part) in zip(stages, decoded) {
                var reader = BinaryReader(part)
                try stage.extractor.restoreState(from: &reader)
            }
        } catch {
            throw CheckpointError(.corrupt, "keyed feature state: \(error.reason)")
        }
        return true
    }
}
