import ArgumentParser
import Dispatch
import Foundation
import Logging
import Synchronization
import VigilEngine

/// `vigil run`: the pipeline between Kafka topics, until Ctrl-C, SIGTERM or a bound.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a topology: read its source topics, score every event, publish alerts and dead letters.")

    @Option(help: "Topology file.")
    var topology: String

    @Option(help: "Broker list host:port[,…] (default: the topology's source.kafka.brokers).")
    var brokers: String?

    @Option(help: "Worker threads (default: one per core).")
    var workers: Int?

    @Option(help: "Stop after this many seconds.")
    var duration: Double?

    @Option(help: "Stop once this many source records have been processed.")
    var events: Int?

    @Flag(name: .customLong("print-alerts"), help: "Print each alert once the broker has acknowledged it.")
    var printAlerts = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() throws {
        let topology = try loadTopology(self.topology)
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var onAlert: (@Sendable (AlertRecord) -> Void)?
        if printAlerts {
            let printer = AlertPrinter()
            onAlert = { printer.print($0) }
        }
        let servers: [String]? = brokers.map { $0.split(separator: ",").map(String.init) }
        let workerCount = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        let engine: KafkaEngine
        do {
            engine = try KafkaEngine(
                topology: topology, brokers: servers, workers: workerCount, stopAfterEvents: events,
                onAlertDelivered: onAlert)
        } catch {
            printError("run: \(error)")
            throw ExitCode(1)
        }
        StopSignals.install()
        let watcher = Thread {
            while !StopSignals.requested.load(ordering: .acquiring) { usleep(50_000) }
            printError("vigil: stopping (signal): draining the workers, flushing outputs, committing")
            engine.stop()
        }
        watcher.start()
        if let duration {
            DispatchQueue.global().asyncAfter(deadline: .now() + duration) { engine.stop() }
        }
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try engine.run()
        } catch {
            printError("run: \(error)")
            printError(SummaryText.render(engine.summary(), elapsed: clock.now - start, title: "run of \(topology.name)"))
            throw ExitCode(1)
        }
        let published = engine.published
        let elapsed = clock.now - start
        let summary = engine.summary()
        printError(SummaryText.render(summary, elapsed: elapsed, title: "run of \(topology.name)"))
        if let first = engine.timeToFirstRecord {
            let processing = max(1e-9, (elapsed - first).seconds)
            printError(
                "  first record after \(String(format: "%.2f", first.seconds)) s (group join); then \(Int(Double(summary.events) / processing)) events/s")
        }
        printError("  published and acknowledged: \(published.alerts) alerts, \(published.deadLetters) dead letters")
        if let p50 = engine.processingLatency(quantile: 0.5), let p99 = engine.processingLatency(quantile: 0.99) {
            printError(
                "  engine time from poll to outputs handed to the producer: p50 \(String(format: "%.2f", p50)) ms, p99 \(String(format: "%.2f", p99)) ms")
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// Prints one line per delivered alert: entity, score, event id and the top features.
final class AlertPrinter: Sendable {
    func print(_ alert: AlertRecord) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(alert.json)) as? [String: Any] else { return }
        let features = (object["features"] as? [[String: Any]] ?? []).compactMap { f -> String? in
            guard let name = f["name"] as? String else { return nil }
            let value = (f["value"] as? Double).map { String(format: "%.4g", $0) } ?? "?"
            return "\(name)=\(value)"
        }
        let score = (object["score"] as? Double).map { String(format: "%.4f", $0) } ?? "?"
        let line = "ALERT \(object["event_time"] as? String ?? "") entity=\(object["entity"] as? String ?? "") event=\(object["event_id"] as? String ?? "-") score=\(score) top: \(features.joined(separator: ", ")) [\(alert.id)]\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }
}

/// SIGINT and SIGTERM set a flag that a watcher thread turns into `engine.stop()`: a signal
/// handler may do nothing more than that.
enum StopSignals {
    static let requested = Atomic<Bool>(false)

    static func install() {
        for sig in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in StopSignals.requested.store(true, ordering: .releasing) }
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, nil)
        }
    }
}
