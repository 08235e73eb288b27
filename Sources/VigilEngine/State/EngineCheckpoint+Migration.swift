import VigilModels

extension EngineCheckpoint {
    /// This checkpoint with its model sections named as `specs` (the models of the topology
    /// restoring it, reading a plan with signature `planSignature`) name them now.
    ///
    /// A format-1 checkpoint names models by their legacy version (a hash of how Swift printed
    /// the spec). A model whose legacy version, computed from its spec today, matches a recorded
    /// one is the same model with the same features: its sections are renamed to its current
    /// version, so it restores warm. Models that do not match stay as they are and start cold.
    /// - Returns: the checkpoint, and `old → new` for every version renamed.
    func migrated(to specs: [ModelSpec], planSignature: UInt64) -> (EngineCheckpoint, [String]) {
        guard bodyVersion == 1 else { return (self, []) }
        var renames: [String: String] = [:]
        for spec in specs {
            guard let legacy = spec.legacyVersion(planSignature: planSignature), modelVersions.contains(legacy) else {
                continue
            }
            renames[legacy] = spec.version(planSignature: planSignature)
        }
        var out = self
        out.bodyVersion = Self.currentBodyVersion
        out.modelVersions = modelVersions.map { renames[$0] ?? $0 }
        for w in out.workers.indices {
            for s in out.workers[w].sections.indices {
                let name = out.workers[w].sections[s].name
                for prefix in ["model:", "ensemble:"] where name.hasPrefix(prefix) {
                    if let new = renames[String(name.dropFirst(prefix.count))] {
                        out.workers[w].sections[s].name = prefix + new
                    }
                }
            }
        }
        return (out, renames.sorted { $0.key < $1.key }.map { "\($0.key) → \($0.value)" })
    }
}
