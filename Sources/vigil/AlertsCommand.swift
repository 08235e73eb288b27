import ArgumentParser
import Foundation
import Logging
import VigilEngine
import VigilKafka

/// `vigil alerts tail`: the alerts topic, one readable line per alert, following it as alerts
/// arrive; what an analyst runs to watch a deployment without writing a consumer.
struct AlertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Read a topology's alerts topic.", subcommands: [Tail.self])

    struct Tail: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Print the newest alerts of the topology's alerts topic, then follow it (Ctrl-C stops): time, entity, event, score, the models and the features behind each.",
            discussion:
                "Reads without a consumer group's commits: it never moves anyone's offsets. Exit status 0, or 1 when the topic cannot be read."
        )

        @OptionGroup var topology: TopologyOption
        @OptionGroup var brokers: BrokerOption
        @OptionGroup var log: LogOption

        @Option(help: "Alerts to show from before now, per partition (0: only new ones).")
        var last = 10

        @Flag(help: "Start from the oldest alert the topic keeps.")
        var fromBeginning = false

        @Flag(inversion: .prefixedNo, help: "Keep reading as alerts arrive (--no-follow stops at the end).")
        var follow = true

        @Option(help: "Stop after printing this many alerts.")
        var count: Int?

        @Flag(help: "Print each alert's JSON as it is on the topic.")
        var json = false

        func validate() throws {
            if last < 0 { throw ValidationError("--last must be ≥ 0") }
            if let count, count < 1 { throw ValidationError("--count must be ≥ 1") }
        }

        func run() throws {
            let topology = try self.topology.load()
            log.bootstrap(fallback: .warning)
            let clients = try brokers.clients(for: topology)
            let topic = topology.alerts.topic
            let logger = Logger(label: "vigil.alerts")
            do {
                let partitions = try clients.admin(logger: logger).metadata(timeout: .seconds(10)).topics[topic] ?? 0
                guard partitions > 0 else {
                    printError("alerts tail: no topic \(topic) on the brokers")
                    throw ExitCode(1)
                }
                let consumer = try KafkaConsumer(
                    configuration: clients.consumer("alerts-tail", group: "vigil-alerts-tail-\(getpid())"),
                    logger: logger)
                defer { consumer.close() }
                // From the oldest record kept: the brokers' reported end offsets cannot be relied on
                // to count back from (Tansu's trail the records), so the backlog is read and only
                // its last alerts per partition are kept, until a poll comes back empty.
                try consumer.assign(
                    Dictionary(
                        uniqueKeysWithValues: (0..<partitions).map {
                            (TopicPartition(topic, Int32($0)), KafkaConsumer.beginning)
                        }))
                let printer = AlertPrinter()
                var printed = 0
                /// Prints one alert; false when done (the count reached, or standard output closed).
                func show(_ value: [UInt8]) -> Bool {
                    if json {
                        FileHandle.standardOutput.write(Data(value + [0x0A]))
                    } else if !printer.print(json: value) {
                        return false
                    }
                    printed += 1
                    return count.map { printed < $0 } ?? true
                }
                var backlog: [Int32: [KafkaMessage]] = [:]
                var caughtUp = false
                var received = false
                // An empty topic: nothing arrives while the fetches start.
                let emptyAfter = ContinuousClock.now + .seconds(3)
                while !caughtUp || follow {
                    let messages = try consumer.poll(maxMessages: 1000, timeout: .milliseconds(300)).messages
                    received = received || !messages.isEmpty
                    if !caughtUp && messages.isEmpty && (received || ContinuousClock.now > emptyAfter) {
                        caughtUp = true
                        let kept = backlog.values.joined().sorted {
                            ($0.timestampMilliseconds ?? 0, $0.partition, $0.offset)
                                < ($1.timestampMilliseconds ?? 0, $1.partition, $1.offset)
                        }
                        for m in kept { if let v = m.value, !show(v) { return } }
                        continue
                    }
                    for m in messages {
                        guard let value = m.value else { continue }
                        if caughtUp || fromBeginning {
                            if !show(value) { return }
                        } else if last > 0 {
                            backlog[m.partition, default: []].append(m)
                            if backlog[m.partition]!.count > last { backlog[m.partition]!.removeFirst() }
                        }
                    }
                }
            } catch let error as KafkaError {
                printError("alerts tail: \(error)")
                throw ExitCode(1)
            }
        }
    }
}
