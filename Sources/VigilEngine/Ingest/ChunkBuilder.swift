import VigilCore
import VigilFeatures

/// Decodes records into a chunk and one column batch per shard. Ingest thread only.
struct ChunkBuilder {
    var decoder: EventDecoder
    let router: ShardRouter
    let models: Int
    /// The features keyed by other entities than the source key, run over each batch before it
    /// is split (`KeyedFeatureStage`).
    let keyedStages: [KeyedFeatureStage]
    /// Their live figures, one per stage, published after each batch.
    let keyedGauges: [KeyedStageGauges]
    private(set) var sequence = 0
    private(set) var records = 0
    private(set) var deadLetters: [DeadLetterReason.Code: Int] = [:]
    private var staging: EventBatch
    private var stagingRows: [Int32] = []
    private var stagingIds: [UInt64] = []

    init(decoder: EventDecoder, router: ShardRouter, models: Int, keyedStages: [KeyedFeatureStage] = []) {
        self.decoder = decoder
        self.router = router
        self.models = models
        self.keyedStages = keyedStages
        keyedGauges = keyedStages.map { KeyedStageGauges(key: $0.stage.key) }
        staging = EventBatch(layout: decoder.layout, capacity: 1024)
    }

    mutating func build(
        count: Int, topics: [String], raw: any RawRecords, shards: Int,
        position: (Int) -> (topic: Int32, partition: Int32, offset: Int64, timestampMs: Int64?), arrivalMs: Int64
    ) -> (InputChunk, [ShardWork?]) {
        let chunk = InputChunk(
            sequence: sequence, count: count, models: models, shards: shards, topics: topics, raw: raw)
        sequence += 1
        records += count
        staging.removeAll()
        stagingRows.removeAll(keepingCapacity: true)
        stagingIds.removeAll(keepingCapacity: true)
        var text: [UInt8] = []
        text.reserveCapacity(count * 24)
        var newest = Int64.min
        for i in 0..<count {
            let p = position(i)
            chunk.topicIndex[i] = p.topic
            chunk.partitions[i] = p.partition
            chunk.offsets[i] = p.offset
            chunk.timestamps[i] = p.timestampMs ?? -1
            raw.withValue(i) { bytes in
                switch decoder.decode(
                    bytes, arrivalMs: p.timestampMs ?? arrivalMs, referenceMs: p.timestampMs, into: &staging)
                {
                case .failure(let reason):
                    chunk.deadLetters[i] = reason
                    chunk.outcomes[i] = .deadLettered
                    deadLetters[reason.code, default: 0] += 1
                case .success(let decoded):
                    let bytes = bytes!
                    chunk.keyRanges[i] = InputChunk.TextRange(
                        start: Int32(text.count), count: Int32(decoded.keyRange.count))
                    text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[decoded.keyRange]))
                    if let idRange = decoded.idRange {
                        chunk.idRanges[i] = InputChunk.TextRange(start: Int32(text.count), count: Int32(idRange.count))
                        text.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[idRange]))
                    }
                    chunk.times[i] = decoded.time
                    newest = max(newest, decoded.time)
                    stagingRows.append(Int32(i))
                    stagingIds.append(decoded.idHash)
                }
            }
        }
        chunk.text = text
        chunk.newestTime = newest
        var works = [ShardWork?](repeating: nil, count: shards)
        if staging.count == 0 { return (chunk, works) }
        for (stage, gauges) in zip(keyedStages, keyedGauges) {
            stage.apply(to: &staging)
            gauges.publish(stage)
        }
        if shards == 1 {
            works[0] = ShardWork(chunk: chunk, batch: staging, rows: stagingRows, idHashes: stagingIds)
            staging = EventBatch(layout: decoder.layout, capacity: 1024)
            return (chunk, works)
        }
        for (shard, part) in router.split(staging).enumerated() where part.batch.count > 0 {
            works[shard] = ShardWork(
                chunk: chunk, batch: part.batch, rows: part.positions.map { stagingRows[$0] },
                idHashes: part.positions.map { stagingIds[$0] })
        }
        return (chunk, works)
    }
}
