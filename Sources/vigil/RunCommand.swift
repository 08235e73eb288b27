import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import VigilCore
import VigilEngine

/// `vigil run`: the pipeline between Kafka topics, until Ctrl-C, SIGTERM or a bound. Runs the
/// engine, the topology watcher, SIGHUP reloads and the admin endpoint as one service group.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a topology: read its source topics, score every event, publish alerts and dead letters.",
        discussion: """
            The topology file is watched: tunables (threshold, weights, roles, explain) swap in between \
            batches, structural changes (fields, features, models) rebuild the pipeline from a checkpoint, \
            and changes that need a restart (brokers, group, topics, checkpoints, admin) are refused. \
            SIGHUP and POST /reload reload it too. SIGTERM and SIGINT stop gracefully.
            """)

    @OptionGroup var topology: TopologyOption

    @OptionGroup var brokers: BrokerOption

    @OptionGroup var workers: WorkerOption

    @OptionGroup var instance: InstanceOption

    @OptionGroup var log: LogOption

    @OptionGroup var progress: ProgressOption

    @Option(help: "Stop after this long (30s, 10m, 2h; a bare number is seconds).")
    var duration: DurationArgument?

    @Option(help: "Stop once this many source records have been processed.")
    var events: Int?

    @Flag(
        name: .customLong("until-end"),
        help: "Stop once the source partitions are done up to where they ended at start.")
    var untilEnd = false

    @Option(
        name: .customLong("restore"),
        help: "Restore this checkpoint (a sequence from `vigil checkpoints list`) instead of the newest.")
    var restoreSequence: UInt64?

    @Option(
        name: .customLong("shutdown-deadline"),
        help:
            "How long a stop may take (draining, flushing, final checkpoint) before the process exits with status 1 (a bare number is seconds)."
    )
    var shutdownDeadline = DurationArgument(.seconds(60))

    @Flag(
        name: .customLong("no-watch"), help: "Do not watch the topology file (SIGHUP and POST /reload still reload it)."
    )
    var noWatch = false

    @Flag(name: .customLong("print-alerts"), help: "Print each alert once the broker has acknowledged it.")
    var printAlerts = false

    @Option(
        name: .customLong("record-outcomes"),
        help:
            "Append one line per source record to this file: topic, partition, offset, outcome, score, finished_ms, event id, alert id (tab-separated, - for none)."
    )
    var recordOutcomes: String?

    func run() async throws {
        let topology = try self.topology.load()
        log.bootstrap()
        // Before any Kafka client is made: their metrics go to the registry /metrics serves.
        MetricsBackend.bootstrap()
        let logger = Logger(label: "vigil")
        let line = progress.line(logFormat: log.logFormat)
        var onAlert: (@Sendable (AlertRecord) -> Void)?
        if printAlerts {
            let printer = AlertPrinter(line: line)
            onAlert = { printer.print($0) }
        }
        var onChunk: (@Sendable (InputChunk) -> Void)?
        if let path = recordOutcomes {
            let log = try OutcomeLog(path: path)
            onChunk = { log.record($0) }
        }
        let engine: KafkaEngine
        do {
            engine = try KafkaEngine(
                topology: topology, topologyFile: self.topology.topology,
                clients: try brokers.clients(for: topology), instance: instance.name, workers: workers.count,
                logger: Logger(label: "vigil.engine"), stopAfterEvents: events, untilEnd: untilEnd,
                restoreSequence: restoreSequence, onChunk: onChunk,
                onAlertDelivered: onAlert)
        } catch {
            printError("run: \(error)")
            throw ExitCode(1)
        }
        // Shut down in reverse order: the admin endpoint and the watchers first, then the engine
        // (which drains and checkpoints); the watchdog, first in the list, outlives it.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(
                service: ShutdownWatchdog(engine: engine, deadline: shutdownDeadline.duration),
                successTerminationBehavior: .ignore, serviceName: "shutdown-watchdog"),
            .init(
                service: EngineService(engine: engine, logger: logger) { [deadline = shutdownDeadline.duration] in
                    printError(
                        "vigil: stopping: draining the workers, flushing outputs, final checkpoint, committing (deadline \(DurationText.format(deadline)))"
                    )
                },
                successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup,
                serviceName: "engine"),
            .init(service: ReloadOnSignal(engine: engine), successTerminationBehavior: .ignore, serviceName: "sighup"),
        ]
        if !noWatch {
            let watcher = FileWatcher(path: self.topology.topology) { _ = await engine.reload(source: .file) }
            services.append(.init(service: watcher, successTerminationBehavior: .ignore, serviceName: "topology-watch"))
        }
        if let duration {
            services.append(
                .init(
                    service: RunTimer(engine: engine, duration: duration.duration),
                    successTerminationBehavior: .ignore, serviceName: "duration"))
        }
        services.append(
            .init(service: RolloutGuard(engine: engine), successTerminationBehavior: .ignore, serviceName: "guard"))
        services.append(
            .init(service: Federation(engine: engine), successTerminationBehavior: .ignore, serviceName: "federation"))
        if let admin = topology.admin {
            let token = AdminServer.token(admin)
            if token == nil {
                logger.warning(
                    "No admin token (\(admin.tokenEnv) or admin.token_file): POST /reload and /checkpoint are refused")
            }
            services.append(
                .init(
                    service: AdminServer.application(
                        engine: engine, spec: admin, token: token, logger: Logger(label: "vigil.admin")),
                    failureTerminationBehavior: .gracefullyShutdownGroup, serviceName: "admin"))
            logger.info("Admin endpoint", metadata: ["listen": "http://\(admin.host):\(admin.port)"])
        }
        if let line {
            // Last in the list: it stops first, before the engine's closing lines.
            services.append(
                .init(
                    service: RunProgress(engine: engine, line: line), successTerminationBehavior: .ignore,
                    serviceName: "progress"))
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "vigil.lifecycle")))
        let clock = ContinuousClock()
        let start = clock.now
        do {
            try await group.run()
        } catch {
            line?.clear()
            printError("run: \(error)")
            printError(
                SummaryText.render(engine.summary(), elapsed: clock.now - start, title: "run of \(topology.name)"))
            throw ExitCode(1)
        }
        line?.clear()
        let published = engine.published
        let elapsed = clock.now - start
        let summary = engine.summary()
        printError(SummaryText.render(summary, elapsed: elapsed, title: "run of \(topology.name)"))
        if let restored = engine.restoredFrom {
            printError("  resumed from checkpoint #\(restored)")
        }
        if let first = engine.timeToFirstRecord {
            let processing = max(1e-9, (elapsed - first).seconds)
            printError(
                "  first record after \(String(format: "%.2f", first.seconds)) s (group join); then \(Int(Double(summary.events) / processing)) events/s"
            )
        }
        printError("  published and acknowledged: \(published.alerts) alerts, \(published.deadLetters) dead letters")
        if let p50 = engine.processingLatency(quantile: 0.5), let p99 = engine.processingLatency(quantile: 0.99) {
            printError(
                "  engine time from poll to outputs handed to the producer: p50 \(String(format: "%.2f", p50)) ms, p99 \(String(format: "%.2f", p99)) ms"
            )
        }
        if let split = engine.processingLatencyAroundCheckpoints(quantile: 0.99) {
            let during = split.during.map { String(format: "%.2f ms", $0) } ?? "-"
            let outside = split.outside.map { String(format: "%.2f ms", $0) } ?? "-"
            printError(
                "  p99 of that time: \(outside) outside checkpoints, \(during) while one of \(split.captures) checkpoints was captured"
            )
        }
    }
}

/// Prints one line per delivered alert: entity, score, event id, the models that decided it
/// (the active ones, and the arm in an experiment) and the top features. Stops printing, rather
/// than failing, once standard output is closed (`vigil run --print-alerts | head`).
final class AlertPrinter: Sendable {
    private let closed = Atomic<Bool>(false)
    /// The progress line to print above, if one is shown.
    private let line: TerminalLine?

    init(line: TerminalLine? = nil) { self.line = line }

    func print(_ alert: AlertRecord) { print(json: alert.json) }

    /// Prints the alert whose JSON (as on the alerts topic) is `json`; false once standard output
    /// is closed.
    @discardableResult
    func print(json: [UInt8]) -> Bool {
        guard !closed.load(ordering: .relaxed) else { return false }
        guard let object = try? JSONSerialization.jsonObject(with: Data(json)) as? [String: Any] else { return true }
        let features = (object["features"] as? [[String: Any]] ?? []).compactMap { f -> String? in
            guard let name = f["name"] as? String else { return nil }
            let value = (f["value"] as? Double).map { String(format: "%.4g", $0) } ?? "?"
            return "\(name)=\(value)"
        }
        let score = (object["score"] as? Double).map { String(format: "%.4f", $0) } ?? "?"
        let models = (object["models"] as? [String: Any] ?? [:]).compactMap { name, m -> String? in
            (m as? [String: Any])?["role"] as? String == "active" ? name : nil
        }.sorted()
        let arm = (object["arm"] as? String).map { " arm=\($0)" } ?? ""
        let line =
            "ALERT \(object["event_time"] as? String ?? "") entity=\(object["entity"] as? String ?? "") event=\(object["event_id"] as? String ?? "-") score=\(score) by=\(models.joined(separator: ","))\(arm) top: \(features.joined(separator: ", ")) [\(object["alert_id"] as? String ?? "?")]\n"
        let written: Bool
        if let status = self.line {
            written = status.above(line, to: .standardOutput)
        } else {
            written = (try? FileHandle.standardOutput.write(contentsOf: Data(line.utf8))) != nil
        }
        if !written { closed.store(true, ordering: .relaxed) }
        return written
    }
}
