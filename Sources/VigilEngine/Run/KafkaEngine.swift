import Foundation
import Logging
import Synchronization
import VigilCore
import VigilKafka
import VigilModels

/// `vigil run`: the pipeline between Kafka topics. A consumer-group member reads the source
/// topics (and the labels topics), the pipeline scores every event, and the sink publishes
/// alerts and dead letters; an input offset is committed only once its alert or dead letter is
/// acknowledged by the broker (at-least-once; alert ids are deterministic, so consumers can drop
/// duplicates after a restart).
///
/// `run()` blocks its thread (the ingest thread) until `stop()`; workers run on threads of their
/// own.
public final class KafkaEngine: Sendable {
    public let topology: Topology
    public let brokers: [String]
    public let workers: Int
    private let logger: Logger
    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let sink: KafkaSink
    private let pipeline: Pipeline
    private let labelSources: [String: LabelDecoder]
    /// Nanoseconds from `run()`'s start to the first source record (0 until then).
    private let firstRecordNanos = Atomic<Int64>(0)

    /// - Parameters:
    ///   - brokers: overrides the topology's `source.kafka.brokers`.
    ///   - stopAfterEvents: stop by itself once this many source records have an outcome.
    ///   - onChunk: called with every finished chunk after its outputs are handed to the
    ///     producer (the integration tests read outcomes and scores from it).
    ///   - onAlertDelivered: called with each alert the broker acknowledged (`--print-alerts`).
    public init(
        topology: Topology, brokers: [String]? = nil, workers: Int, logger: Logger = Logger(label: "vigil.engine"),
        stopAfterEvents: Int? = nil, onChunk: (@Sendable (InputChunk) -> Void)? = nil,
        onAlertDelivered: (@Sendable (AlertRecord) -> Void)? = nil
    ) throws {
        self.topology = topology
        let servers = brokers ?? topology.source.kafka.brokers
        self.brokers = servers
        self.workers = workers
        self.logger = logger
        let common = KafkaConfiguration(
            bootstrapServers: servers, clientID: "vigil-\(topology.name)", properties: topology.source.kafka.properties)
        if topology.source.kafka.createTopics {
            let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: servers, clientID: "vigil-admin"))
            let created = try admin.ensureTopics(topology.topics, partitions: topology.source.kafka.partitions)
            if !created.isEmpty { logger.info("Created topics", metadata: ["topics": "\(created.sorted())"]) }
        }
        var consumerConfig = KafkaConsumerConfiguration(common: common, groupID: topology.source.kafka.group)
        consumerConfig.startFrom = topology.source.kafka.startFrom == .earliest ? .earliest : .latest
        consumer = try KafkaConsumer(configuration: consumerConfig, logger: logger)
        let sink = KafkaSink(
            topology: topology, logger: logger, stopAfter: stopAfterEvents, onChunk: onChunk,
            onAlertDelivered: onAlertDelivered)
        self.sink = sink
        var producerConfig = KafkaProducerConfiguration(
            common: KafkaConfiguration(bootstrapServers: servers, clientID: "vigil-\(topology.name)"))
        producerConfig.linger = .milliseconds(5)
        producer = try KafkaProducer(configuration: producerConfig, logger: logger) { report in sink.delivered(report) }
        pipeline = try Pipeline(topology: topology, workers: workers, sink: sink)
        var labels: [String: LabelDecoder] = [:]
        for source in topology.models.compactMap(\.kind.labels) {
            labels[source.topic] = LabelDecoder(source: source, timeField: topology.source.time?.field)
        }
        labelSources = labels
        sink.attach(producer: producer, consumer: consumer)
    }

    /// Model versions, in topology order (they are part of every alert id).
    public var modelVersions: [String] { pipeline.modelVersions }

    /// Reads, scores and publishes until `stop()` (or `stopAfterEvents`), then drains the
    /// workers, flushes the producer, commits what is done and leaves the group.
    /// - Throws: a fatal `KafkaError`; retriable ones (a broker away) are logged and retried.
    public func run() throws {
        let sources = topology.source.kafka.topics
        try consumer.subscribe(topics: sources + labelSources.keys.sorted())
        pipeline.start()
        logger.info(
            "Vigil running",
            metadata: [
                "topology": "\(topology.name)", "topics": "\(sources)", "workers": "\(workers)",
                "models": "\(pipeline.modelVersions)",
            ])
        let sourceSet = Set(sources)
        let started = ContinuousClock.now
        var failure: (any Error)?
        do {
            try consumer.run(maxBatch: 10_000, pollTimeout: .milliseconds(100)) { batch in
                if firstRecordNanos.load(ordering: .relaxed) == 0 {
                    let d = ContinuousClock.now - started
                    firstRecordNanos.store(max(1, d.components.seconds * 1_000_000_000 + d.components.attoseconds / 1_000_000_000), ordering: .relaxed)
                }
                ingest(batch, sources: sourceSet)
                sink.retryFailed()
            }
        } catch {
            failure = error
            logger.error("Consumer failed", metadata: ["error": "\(error)"])
        }
        pipeline.finish()
        do {
            try sink.drain(deadline: .seconds(30))
        } catch {
            logger.error("Outputs not all acknowledged at shutdown", metadata: ["error": "\(error)"])
            if failure == nil { failure = error }
        }
        consumer.close()
        if let failure { throw failure }
    }

    /// Makes `run()` stop reading and finish (from any thread).
    public func stop() {
        consumer.stop()
    }

    /// Totals so far; complete once `run()` has returned.
    public func summary() -> Pipeline.Summary {
        var s = pipeline.summary()
        s.labelsMalformed += sink.labelsMalformed
        return s
    }

    /// Time from `run()`'s start to the first record (the group join, mostly); nil before it.
    public var timeToFirstRecord: Duration? {
        let n = firstRecordNanos.load(ordering: .relaxed)
        return n == 0 ? nil : .nanoseconds(n)
    }

    /// The engine's own latency: milliseconds from the poll that returned a record to its alert
    /// or dead letter handed to the producer (the broker's and the producer's delays come on
    /// top), at quantile `q` over the chunks so far; nil before the first.
    public func processingLatency(quantile q: Double) -> Double? { sink.chunkTime(quantile: q) }

    /// Records acknowledged so far: alerts and dead letters.
    public var published: (alerts: Int, deadLetters: Int) { sink.published }

    private func ingest(_ batch: KafkaBatch, sources: Set<String>) {
        var events: [Int] = []
        events.reserveCapacity(batch.count)
        var labels: [LabelRecord] = []
        for i in 0..<batch.count {
            let record = batch[i]
            if sources.contains(record.topic) {
                events.append(i)
            } else if let decoder = labelSources[record.topic] {
                let result = record.withValueBytes { decoder.decode($0) }
                switch result {
                case .success(let label):
                    labels.append(label.record)
                    consumer.markDone(record.position)
                case .failure(let reason):
                    sink.deadLetterLabel(record, reason)
                }
            }
        }
        if !events.isEmpty {
            let raw = KafkaRecords(batch: batch, indices: events)
            pipeline.submit(
                count: events.count, topics: batch.topics, raw: raw,
                position: { k in
                    let r = batch[events[k]]
                    return (Int32(r.topicIndex), r.partition, r.offset, r.timestampMilliseconds)
                }, arrivalMs: Int64(Date().timeIntervalSince1970 * 1000))
        }
        pipeline.submitLabels(labels)
    }
}

/// The source records of a consumed batch, as a chunk's raw records.
struct KafkaRecords: RawRecords {
    let batch: KafkaBatch
    let indices: [Int]

    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        batch[indices[i]].withValueBytes { body($0) }
    }

    func key(_ i: Int) -> [UInt8]? { batch[indices[i]].key.map(Array.init) }
}
