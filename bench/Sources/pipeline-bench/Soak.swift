import ArgumentParser
import Foundation
import Logging
import VigilKafka
import VigilSynthetic

/// The soak's load and its read-out (bench/soak.sh): the synthetic stream, generated on the fly so
/// that no input file bounds the run, produced at a fixed rate for a long time; after every
/// interval one line with that interval's event→alert latency and the engine process's resident
/// memory, open descriptors and threads (from /proc); at the end their slopes.
struct Soak: ParsableCommand {
    @Option var brokers: String
    @Option var source: String
    @Option(help: "Topic for the stream's labels (omit to send none).") var labels: String?
    @Option var output: String
    @Option var rate = 20_000.0
    @Option var minutes = 20.0
    @Option(help: "Seconds between read-outs.") var interval = 60.0
    @Option var cards = 100_000
    @Option var seed: UInt64 = 31
    @Option(help: "The engine's process id, read from /proc.") var pid: Int32
    @Option(help: "Read-outs left out of the slopes (the state fills up at first).") var warmup = 2
    @Option var fetchWaitMs = 10

    /// One read-out.
    struct Sample {
        var minute: Double
        var sent: Int
        var samples: Int
        var p50: Double
        var p99: Double
        var rssMB: Double
        var fds: Int
        var threads: Int
    }

    func run() throws {
        let common = KafkaConfiguration(
            bootstrapServers: brokers.split(separator: ",").map(String.init), clientID: "soak-bench")
        // At each read-out the sends of the interval before the last are dropped.
        let timer = try OutputTimer(common: common, output: output, fetchWaitMs: fetchWaitMs)

        var producerConfig = KafkaProducerConfiguration(common: common)
        producerConfig.linger = .milliseconds(5)
        let producer = try KafkaProducer(configuration: producerConfig, logger: Logger(label: "bench"))
        let events = producer.topic(source)
        let labelTopic = labels.map { producer.topic($0) }
        var config = TransactionStream.Config()
        config.seed = seed
        config.cards = cards
        let total = Int(rate * minutes * 60)
        config.events = total
        var stream = SyntheticEvents(config)
        let clock = ContinuousClock()
        let start = clock.now
        var nextReadout = start.advanced(by: .seconds(interval))
        var samples: [Sample] = []
        var k = 0
        var sentInInterval = 0
        while k < total, let record = stream.next() {
            switch record {
            case .event(let id, let card, let json):
                let due = start.advanced(by: .seconds(Double(k) / rate))
                while clock.now < due { usleep(50) }
                timer.sent(id)
                try Array(card.utf8).withUnsafeBytes { key in
                    try json.withUnsafeBytes { try producer.send(to: events, key: key, value: $0) }
                }
                k += 1
                sentInInterval += 1
            case .label(_, let json):
                if let labelTopic {
                    try json.withUnsafeBytes { try producer.send(to: labelTopic, key: nil, value: $0) }
                }
            }
            if clock.now >= nextReadout {
                samples.append(readout(minute: seconds(clock.now - start) / 60, sent: sentInInterval, timer.take()))
                timer.rotate()
                sentInInterval = 0
                nextReadout = nextReadout.advanced(by: .seconds(interval))
            }
        }
        try producer.close(deadline: .seconds(30))
        Thread.sleep(forTimeInterval: 3)
        timer.stop()
        // The last interval's tail, unless the loop's last read-out already covered it.
        if sentInInterval > Int(rate * interval / 2) {
            samples.append(readout(minute: seconds(clock.now - start) / 60, sent: sentInInterval, timer.take()))
        }
        summarize(samples)
    }

    /// The interval's latencies (sorted) and the engine's /proc entries; prints one line.
    private func readout(minute: Double, sent: Int, _ l: [Double]) -> Sample {
        func q(_ p: Double) -> Double { l.isEmpty ? .nan : l[min(l.count - 1, Int(p * Double(l.count)))] }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Double {
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else {
                return .nan
            }
            return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? .nan
        }
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
        let s = Sample(
            minute: minute, sent: sent, samples: l.count, p50: q(0.5), p99: q(0.99), rssMB: field("VmRSS") / 1024,
            fds: fds, threads: Int(field("Threads").isNaN ? -1 : field("Threads")))
        // Unbuffered, so that each line shows when it is read out, also through a pipe.
        let line = String(
            format: "soak minute=%.1f sent=%d alerts_timed=%d p50_ms=%.2f p99_ms=%.2f rss_mb=%.1f fds=%d threads=%d\n",
            s.minute, s.sent, s.samples, s.p50, s.p99, s.rssMB, s.fds, s.threads)
        FileHandle.standardOutput.write(Data(line.utf8))
        return s
    }

    /// Least-squares slopes per hour of RSS, descriptors and threads over the read-outs after the
    /// warm-up, and the first and last p99.
    private func summarize(_ all: [Sample]) {
        let s = all.count > warmup + 1 ? Array(all.dropFirst(warmup)) : all
        func slope(_ y: (Sample) -> Double) -> Double {
            let n = Double(s.count)
            let mx = s.map { $0.minute / 60 }.reduce(0, +) / n
            let my = s.map(y).reduce(0, +) / n
            let sxy = s.map { ($0.minute / 60 - mx) * (y($0) - my) }.reduce(0, +)
            let sxx = s.map { ($0.minute / 60 - mx) * ($0.minute / 60 - mx) }.reduce(0, +)
            return sxx > 0 ? sxy / sxx : .nan
        }
        print(
            String(
                format:
                    "soak summary readouts=%d after_warmup=%d rss_slope_mb_per_h=%.1f fd_slope=%.2f thread_slope=%.2f rss_mb_first=%.1f rss_mb_last=%.1f p99_ms_first=%.2f p99_ms_last=%.2f",
                all.count, s.count, slope { $0.rssMB }, slope { Double($0.fds) }, slope { Double($0.threads) },
                s.first?.rssMB ?? .nan, s.last?.rssMB ?? .nan, s.first?.p99 ?? .nan, s.last?.p99 ?? .nan))
    }
}
