import ArgumentParser
import Foundation
import Logging
import Synchronization
import VigilKafka

/// Measures VigilKafka's produce and consume throughput and end-to-end latency against a broker,
/// timed the way librdkafka's rdkafka_performance times itself, and prints one line of numbers.
@main
struct KafkaBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-bench", subcommands: [Produce.self, Consume.self, Latency.self])
}

struct Common: ParsableArguments {
    @Option(help: "Broker address.") var brokers: String
    @Option(help: "Topic.") var topic: String
    @Option(help: "Compression codec for producing (none, lz4).") var codec = "none"
}

/// Produces N ~150-byte JSON records; timed from the first send until every acknowledgement.
struct Produce: ParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Records.") var messages = 1_000_000

    func run() throws {
        var config = KafkaProducerConfiguration(
            common: KafkaConfiguration(
                bootstrapServers: [common.brokers], clientID: "kafka-bench", properties: ["batch.size": "1000000"]))
        config.compression = common.codec
        let producer = try KafkaProducer(configuration: config, logger: Logger(label: "bench"))
        let topic = producer.topic(common.topic)
        // 4096 distinct records in one buffer, built before timing starts: the layer is measured,
        // not JSON building (as in Vigil, where records are encoded into a batch buffer).
        let size = 150
        var pool = [UInt8](repeating: 0, count: 4096 * size)
        var scratch = [UInt8](repeating: 0, count: size)
        for i in 0..<4096 {
            _ = Payload.fill(&scratch, index: i, sentNanos: 0)
            pool.replaceSubrange((i * size)..<((i + 1) * size), with: scratch)
        }
        let bytes = messages * size
        let clock = ContinuousClock()
        let start = clock.now
        try pool.withUnsafeBytes { all in
            for i in 0..<messages {
                let at = (i & 4095) * size
                try producer.send(to: topic, key: nil, value: UnsafeRawBufferPointer(rebasing: all[at..<(at + size)]))
            }
        }
        try producer.flush(timeout: .seconds(120))
        let elapsed = clock.now - start
        guard producer.deliveredCount == messages else {
            throw ValidationError("only \(producer.deliveredCount) of \(messages) delivered")
        }
        Report.throughput("produce", messages, bytes, elapsed)
    }
}

/// Consumes N records as a new group member from the earliest offset, marking each batch done as
/// Vigil does; timed from the first record received to the Nth.
struct Consume: ParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Records.") var messages = 1_000_000

    func run() throws {
        var config = KafkaConsumerConfiguration(
            common: KafkaConfiguration(bootstrapServers: [common.brokers], clientID: "kafka-bench"),
            groupID: "kafka-bench-\(getpid())-\(Int(Date().timeIntervalSince1970))")
        config.startFrom = .earliest
        let consumer = try KafkaConsumer(configuration: config, logger: Logger(label: "bench"))
        try consumer.subscribe(topics: [common.topic])
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(120))
        var start: ContinuousClock.Instant?
        var count = 0
        var bytes = 0
        while count < messages, clock.now < deadline {
            let batch = try consumer.poll(maxMessages: 10_000, timeout: .milliseconds(100))
            if batch.isEmpty { continue }
            if start == nil { start = clock.now }
            count += batch.count
            bytes += batch.byteCount
            consumer.markDone(batch)
        }
        let elapsed = clock.now - (start ?? clock.now)
        consumer.close()
        guard count >= messages else { throw ValidationError("only \(count) of \(messages) consumed") }
        Report.throughput("consume", count, bytes, elapsed)
    }
}

/// Produces at a fixed rate with the send time in each record, consumes in the same process on
/// a poll thread, and reports end-to-end latency percentiles.
struct Latency: ParsableCommand {
    @OptionGroup var common: Common
    @Option(help: "Records per second.") var rate = 10_000
    @Option(help: "Seconds to run.") var seconds = 10

    func run() throws {
        let common = KafkaConfiguration(bootstrapServers: [self.common.brokers], clientID: "kafka-bench")
        var cconfig = KafkaConsumerConfiguration(common: common, groupID: "kafka-bench-lat-\(getpid())")
        cconfig.startFrom = .latest
        let consumer = try KafkaConsumer(configuration: cconfig, logger: Logger(label: "bench"))
        try consumer.subscribe(topics: [self.common.topic])
        // Join the group before producing, so no record waits for the join.
        let clock = ContinuousClock()
        let joinDeadline = clock.now.advanced(by: .seconds(30))
        while consumer.assignment.isEmpty, clock.now < joinDeadline {
            _ = try consumer.poll(maxMessages: 100, timeout: .milliseconds(100))
        }
        guard !consumer.assignment.isEmpty else { throw ValidationError("consumer was not assigned partitions") }

        let samples = Mutex<[Int64]>([])
        let done = Atomic<Bool>(false)
        let reader = Thread {
            try? consumer.run(maxBatch: 10_000, pollTimeout: .milliseconds(50)) { batch in
                let now = Payload.monotonicNanos()
                var batchSamples: [Int64] = []
                batchSamples.reserveCapacity(batch.count)
                for r in batch { if let sent = r.withValueBytes(Payload.sentNanos) { batchSamples.append(now - sent) } }
                samples.withLock { $0 += batchSamples }
                consumer.markDone(batch)
            }
            done.store(true, ordering: .releasing)
        }
        reader.start()

        var pconfig = KafkaProducerConfiguration(common: common)
        pconfig.compression = self.common.codec
        let producer = try KafkaProducer(configuration: pconfig, logger: Logger(label: "bench"))
        let topic = producer.topic(self.common.topic)
        var payload = [UInt8](repeating: 0, count: 150)
        let total = rate * seconds
        let interval = 1_000_000_000 / Int64(rate)
        let begin = Payload.monotonicNanos()
        for i in 0..<total {
            let due = begin + Int64(i) * interval
            while Payload.monotonicNanos() < due { usleep(50) }
            let n = Payload.fill(&payload, index: i, sentNanos: Payload.monotonicNanos())
            try payload.withUnsafeBytes { p in
                try producer.send(to: topic, key: nil, value: UnsafeRawBufferPointer(rebasing: p[0..<n]))
            }
        }
        try producer.flush(timeout: .seconds(30))
        let waitUntil = clock.now.advanced(by: .seconds(10))
        while samples.withLock({ $0.count }) < total, clock.now < waitUntil { usleep(10_000) }
        consumer.stop()
        while !done.load(ordering: .acquiring) { usleep(10_000) }
        consumer.close()
        var all = samples.withLock { $0 }
        all.sort()
        guard !all.isEmpty else { throw ValidationError("no records came back") }
        func pct(_ q: Double) -> Double { Double(all[min(all.count - 1, Int(Double(all.count) * q))]) / 1e6 }
        print(
            String(
                format: "latency samples=%d rate=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f peak_rss_mib=%.0f",
                all.count, rate, pct(0.5), pct(0.99), Double(all.last!) / 1e6, Report.peakRSSMiB()))
    }
}

/// A ~150-byte JSON payment whose `sent` field carries a monotonic send time.
enum Payload {
    static func monotonicNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Writes the record into `buffer`; returns its length.
    static func fill(_ buffer: inout [UInt8], index i: Int, sentNanos: Int64) -> Int {
        let text =
            #"{"txn_id":"t\#(i)","card_id":"c\#(i % 10_000)","amount":\#(i % 997).\#(i % 100),"#
            + #""country":"DE","merchant_category":"grocery","sent":\#(sentNanos)}"#
        var n = 0
        for byte in text.utf8 where n < buffer.count {
            buffer[n] = byte
            n += 1
        }
        while n < 150 {  // pad to 150 bytes like rdkafka_performance -s 150
            buffer[n] = 0x20
            n += 1
        }
        return n
    }

    /// The `sent` field of a payload, without parsing the JSON.
    static func sentNanos(_ bytes: UnsafeRawBufferPointer?) -> Int64? {
        guard let bytes else { return nil }
        let key = Array(#""sent":"#.utf8)
        guard bytes.count > key.count else { return nil }
        for i in 0...(bytes.count - key.count) where bytes[i] == key[0] {
            if (0..<key.count).allSatisfy({ bytes[i + $0] == key[$0] }) {
                var value: Int64 = 0
                var j = i + key.count
                while j < bytes.count, bytes[j] >= 0x30, bytes[j] <= 0x39 {
                    value = value * 10 + Int64(bytes[j] - 0x30)
                    j += 1
                }
                return value
            }
        }
        return nil
    }
}

enum Report {
    static func throughput(_ what: String, _ count: Int, _ bytes: Int, _ elapsed: Duration) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(
            String(
                format: "%@ messages=%d seconds=%.3f msgs_per_s=%.0f mb_per_s=%.2f ns_per_msg=%.0f peak_rss_mib=%.0f",
                what, count, seconds, Double(count) / seconds, Double(bytes) / seconds / 1e6,
                seconds * 1e9 / Double(count),
                peakRSSMiB()))
    }

    static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
