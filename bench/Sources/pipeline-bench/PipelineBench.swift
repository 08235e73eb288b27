import ArgumentParser
import Foundation
import Logging
import Synchronization
import VigilCore
import VigilEngine
import VigilKafka

/// The pipeline benchmark's tools: JSON decoding against Foundation, and event-to-output latency
/// through the broker for `vigil run` and for a pass-through relay (bench/pipeline-vs-peers.sh),
/// and the soak's load and read-out (bench/soak.sh).
@main
struct PipelineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline-bench", subcommands: [Decode.self, Latency.self, Relay.self, Soak.self])
}

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }

/// ns/event of Vigil's decoder and of Foundation's two JSON parsers on the same lines.
struct Decode: ParsableCommand {
    @Option var topology: String
    @Option var input: String
    @Option var events = 200_000

    /// The card-payments event as a Codable type, as a Swift team would decode it with Foundation.
    struct Payment: Decodable {
        var txnID: String
        var cardID: String
        var ts: Int64
        var amount: Double
        var merchantID: String
        var merchantCategory: String
        var country: String
        var channel: String?

        enum CodingKeys: String, CodingKey {
            case ts, amount, country, channel
            case txnID = "txn_id"
            case cardID = "card_id"
            case merchantID = "merchant_id"
            case merchantCategory = "merchant_category"
        }
    }

    func run() throws {
        let topology = try TopologyLoader.load(path: self.topology)
        let text = try Data(contentsOf: URL(fileURLWithPath: input))
        let lines = text.split(separator: 0x0A, omittingEmptySubsequences: true).prefix(events).map { Data($0) }
        // One buffer and line ranges, as ingest sees a batch of records.
        var all: [UInt8] = []
        var ranges: [Range<Int>] = []
        for line in lines {
            ranges.append(all.count..<(all.count + line.count))
            all += line
        }
        let clock = ContinuousClock()
        let best = all.withUnsafeBytes { buffer in
            var decoder = EventDecoder(source: topology.source, schema: topology.schema)
            var batch = EventBatch(layout: decoder.layout, capacity: 4096)
            var best = Double.infinity
            for _ in 0..<3 {
                let start = clock.now
                for r in ranges {
                    if batch.count == 4096 { batch.removeAll() }
                    _ = decoder.decode(UnsafeRawBufferPointer(rebasing: buffer[r]), arrivalMs: 0, into: &batch)
                }
                best = min(best, seconds(clock.now - start) * 1e9 / Double(ranges.count))
            }
            return best
        }
        let json = JSONDecoder()
        var codable = Double.infinity
        for _ in 0..<2 {
            let start = clock.now
            var sum = 0.0
            for line in lines.prefix(50_000) { sum += (try json.decode(Payment.self, from: line)).amount }
            codable = min(codable, seconds(clock.now - start) * 1e9 / Double(min(lines.count, 50_000)))
            precondition(sum > 0)
        }
        var serialization = Double.infinity
        for _ in 0..<2 {
            let start = clock.now
            var sum = 0.0
            for line in lines.prefix(50_000) {
                let object = try JSONSerialization.jsonObject(with: line) as! [String: Any]
                sum += (object["amount"] as? NSNumber)?.doubleValue ?? 0
            }
            serialization = min(serialization, seconds(clock.now - start) * 1e9 / Double(min(lines.count, 50_000)))
            precondition(sum > 0)
        }
        print(
            String(
                format: "decode vigil_ns=%.0f jsondecoder_ns=%.0f jsonserialization_ns=%.0f events=%d", best, codable,
                serialization, lines.count))
    }
}

/// Produces generated events at a fixed rate and measures, for each output record that names an
/// event (an alert's `event_id`, or a relayed event's `txn_id`), the time from its send to its
/// arrival on the output topic (monotonic clock, one process).
struct Latency: ParsableCommand {
    @Option var brokers: String
    @Option var source: String
    @Option var output: String
    @Option var rate = 10_000.0
    @Option var seconds = 20.0
    @Option var input: String
    /// The reader's fetch.wait.max.ms: on a sparse output topic the broker holds each fetch this
    /// long, which would be counted as latency.
    @Option var fetchWaitMs = 10

    func run() throws {
        let common = KafkaConfiguration(
            bootstrapServers: brokers.split(separator: ",").map(String.init), clientID: "latency-bench")
        let lines = try Data(contentsOf: URL(fileURLWithPath: input)).split(separator: 0x0A).map { Array($0) }
        let total = min(lines.count, Int(rate * seconds))
        let timer = try OutputTimer(common: common, output: output, fetchWaitMs: fetchWaitMs)
        var producerConfig = KafkaProducerConfiguration(common: common)
        producerConfig.linger = .milliseconds(5)
        let producer = try KafkaProducer(configuration: producerConfig, logger: Logger(label: "bench"))
        let topic = producer.topic(source)
        let clock = ContinuousClock()
        let start = clock.now
        for k in 0..<total {
            let due = start.advanced(by: .seconds(Double(k) / rate))
            while clock.now < due { usleep(50) }
            let line = lines[k]
            if let id = Self.field(line, "txn_id") { timer.sent(id) }
            try line.withUnsafeBytes { try producer.send(to: topic, key: nil, value: $0) }
        }
        try producer.close(deadline: .seconds(30))
        Thread.sleep(forTimeInterval: 3)
        timer.stop()
        let samples = timer.takeSamples()
        guard !samples.isEmpty else {
            print("latency samples=0")
            return
        }
        let sorted = samples.map(\.total)
        func q(_ p: Double, _ values: [Double]) -> Double {
            values[min(values.count - 1, Int(p * Double(values.count)))]
        }
        // Where the slowest 1 % spent their time: the medians of their two parts.
        let tail = samples[min(samples.count - 1, Int(0.99 * Double(samples.count)))...]
        print(
            String(
                format:
                    "latency samples=%d sent=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f tail_to_output_ms=%.1f tail_after_output_ms=%.1f",
                sorted.count, total, q(0.5, sorted), q(0.99, sorted), sorted.last!,
                q(0.5, tail.map(\.toOutput).sorted()), q(0.5, tail.map(\.afterOutput).sorted())))
    }

    static func eventID(_ json: [UInt8]) -> String? { field(json, "event_id") ?? field(json, "txn_id") }

    /// The string value of `"name":"…"` in a flat JSON text.
    static func field(_ json: [UInt8], _ name: String) -> String? {
        let marker = Array("\"\(name)\":\"".utf8)
        guard let start = json.firstRange(of: marker)?.upperBound, let end = json[start...].firstIndex(of: 0x22) else {
            return nil
        }
        return String(decoding: json[start..<end], as: UTF8.self)
    }
}

/// A pass-through relay: consume, re-produce at once, nothing else; offsets committed after the
/// acknowledgement, as Vigil does. Runs until killed. `--every N` forwards only one record in N
/// (by the hash of its txn_id): a control with an output as sparse as Vigil's alerts.
struct Relay: ParsableCommand {
    @Option var brokers: String
    @Option var source: String
    @Option var output: String
    @Option var every = 1

    func run() throws {
        let common = KafkaConfiguration(
            bootstrapServers: brokers.split(separator: ",").map(String.init), clientID: "relay")
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(common: common, groupID: "relay-\(UUID().uuidString)"),
            logger: Logger(label: "bench"))
        var producerConfig = KafkaProducerConfiguration(common: common)
        producerConfig.linger = .milliseconds(5)
        let positions = Mutex<[UInt64: KafkaPosition]>([:])
        let producer = try KafkaProducer(configuration: producerConfig, logger: Logger(label: "bench")) { report in
            if let p = positions.withLock({ $0.removeValue(forKey: report.token) }) { consumer.markDone(p) }
        }
        let topic = producer.topic(output)
        try consumer.subscribe(topics: [source])
        var token: UInt64 = 0
        try consumer.run(maxBatch: 10_000, pollTimeout: .milliseconds(100)) { batch in
            for i in 0..<batch.count {
                if every > 1 {
                    let id = batch[i].value.flatMap { Latency.field(Array($0), "txn_id") } ?? ""
                    if StableHash.hash(id) % UInt64(every) != 0 {
                        consumer.markDone(batch.position(i))
                        continue
                    }
                }
                token += 1
                let t = token
                positions.withLock { $0[t] = batch.position(i) }
                batch[i].withValueBytes { value in _ = try? producer.send(to: topic, key: nil, value: value, token: t) }
            }
        }
    }
}
