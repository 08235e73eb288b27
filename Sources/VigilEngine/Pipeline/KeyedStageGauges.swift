import Synchronization
import VigilFeatures

/// One keyed feature stage's live figures for the admin endpoint (entities held and evictions, per
/// key): written by the ingest thread after each batch, read by any thread. The workers' gauges
/// cover only the source key's entities.
final class KeyedStageGauges: Sendable {
    /// The field the stage is keyed by (`merchant_id`, `global`, …).
    let key: String
    let entities = Atomic<Int>(0)
    let evictedIdle = Atomic<Int>(0)
    let evictedForCapacity = Atomic<Int>(0)

    init(key: String) { self.key = key }

    func publish(_ stage: KeyedFeatureStage) {
        entities.store(stage.extractor.entityCount, ordering: .relaxed)
        evictedIdle.store(stage.extractor.counters.evictedIdle, ordering: .relaxed)
        evictedForCapacity.store(stage.extractor.counters.evictedForCapacity, ordering: .relaxed)
    }

    /// A reading of the figures.
    var snapshot: KeyedStageFigures {
        KeyedStageFigures(
            key: key, entities: entities.load(ordering: .relaxed), evictedIdle: evictedIdle.load(ordering: .relaxed),
            evictedForCapacity: evictedForCapacity.load(ordering: .relaxed))
    }
}

/// What a keyed feature stage holds and has evicted, as `/metrics` and `/status` report it.
public struct KeyedStageFigures: Sendable, Hashable {
    public var key: String
    public var entities: Int
    public var evictedIdle: Int
    public var evictedForCapacity: Int
}
