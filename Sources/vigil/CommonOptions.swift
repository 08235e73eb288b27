import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilEngine

/// `--topology FILE`: the commands that read a topology (run, replay, checkpoints list).
struct TopologyOption: ParsableArguments {
    @Option(help: "Topology file.")
    var topology: String

    /// The topology, or an exit with every problem listed.
    func load() throws -> Topology { try loadTopology(topology) }
}

/// `--brokers host:port[,…]`: the commands that talk to Kafka.
struct BrokerOption: ParsableArguments {
    @Option(
        help:
            "Broker list host:port[,…] (default: the topology's source.kafka.brokers; for doctor, $KAFKA_BOOTSTRAP).")
    var brokers: String?

    @Option(
        name: .customLong("kafka-property"),
        help: ArgumentHelp(
            "A librdkafka property for every Kafka client, over the topology's (repeatable; e.g. security.protocol=ssl).",
            valueName: "key=value"))
    var properties: [String] = []

    /// `--kafka-property` as a mapping.
    /// - Throws: `ValidationError` for an entry without `=`.
    func propertyMap() throws -> [String: String] {
        var out: [String: String] = [:]
        for entry in properties {
            guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                throw ValidationError("--kafka-property \(entry): expected key=value")
            }
            out[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        return out
    }

    /// The Kafka clients of `topology`: its brokers and properties, then these options over them.
    func clients(for topology: Topology) throws -> KafkaClients {
        var topology = topology
        topology.source.kafka.properties.merge(try propertyMap()) { $1 }
        return try KafkaClients(topology: topology, brokers: brokers.map { _ in list(or: []) })
    }

    /// The brokers given, else `fallback`.
    func list(or fallback: [String]) -> [String] {
        brokers.map { $0.split(separator: ",").map(String.init) } ?? fallback
    }

    /// The brokers given, else `$KAFKA_BOOTSTRAP`; nil when neither is set.
    var orEnvironment: [String]? {
        guard let text = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"], !text.isEmpty else {
            return nil
        }
        return text.split(separator: ",").map(String.init)
    }
}

/// `--workers N`: the commands that run the pipeline (run, replay).
struct WorkerOption: ParsableArguments {
    @Option(
        help: "Worker threads (default: one per core). Results depend on it; use the same number for run and replay.")
    var workers: Int?

    var count: Int { max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount) }
}

/// `--log-level`: how much of the engine's and librdkafka's log reaches standard error.
struct LogOption: ParsableArguments {
    @Option(
        help: "Log level: trace, debug, info, notice, warning, error, critical (default: info; warning for listings).",
        transform: parseLogLevel)
    var logLevel: Logger.Level?

    @Option(help: "Log lines as text, or as one JSON object each (time, level, logger, message, metadata).")
    var logFormat: LogFormat = .text

    /// How log lines are written.
    enum LogFormat: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    /// Sends every logger to standard error at the level asked for (`fallback` when none was).
    func bootstrap(fallback: Logger.Level = .info) {
        let level = logLevel ?? fallback
        let format = logFormat
        JSONLogHandler.enabled.store(format == .json, ordering: .relaxed)
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
    }
}

/// Reads `--log-level` (swift-log's level names) without a retroactive conformance.
func parseLogLevel(_ text: String) throws -> Logger.Level {
    guard let level = Logger.Level(rawValue: text.lowercased()) else {
        throw ValidationError("unknown log level '\(text)' (trace, debug, info, notice, warning, error, critical)")
    }
    return level
}

/// Loads a topology or exits with its problems listed.
func loadTopology(_ path: String) throws -> Topology {
    do {
        return try TopologyLoader.load(path: path)
    } catch {
        printError("invalid: \(path)\n\(error)")
        throw ExitCode(1)
    }
}

/// Writes a message for the user to standard error: as text, or under `--log-format json` as one
/// JSON log record (level `error` or `warning` by its prefix, else `notice`), so that standard
/// error holds nothing but JSON lines.
func printError(_ text: String) {
    guard JSONLogHandler.enabled.load(ordering: .relaxed) else {
        FileHandle.standardError.write(Data((text + "\n").utf8))
        return
    }
    let level: Logger.Level =
        text.hasPrefix("error") || text.hasPrefix("invalid") ? .error : text.hasPrefix("warning") ? .warning : .notice
    JSONLogHandler(label: "vigil").log(
        event: LogEvent(
            level: level, message: "\(text)", metadata: nil, source: "vigil", file: #file, function: #function,
            line: #line))
}

/// `--instance NAME`: which instance of a consumer group this is (run, checkpoints list).
struct InstanceOption: ParsableArguments {
    @Option(
        help:
            "This instance's name in its consumer group; its checkpoints are keyed by it (default: $VIGIL_INSTANCE, else the host name)."
    )
    var instance: String?

    var name: String { instance ?? KafkaEngine.defaultInstance }
}

/// A duration option written as in topology files (`500ms`, `30s`, `10m`, `2h`, `7d`); a bare
/// number still reads as seconds, as these options took before.
struct DurationArgument: ExpressibleByArgument, Sendable {
    let duration: Duration

    init(_ duration: Duration) { self.duration = duration }

    init?(argument: String) {
        if let d = DurationText.parse(argument) {
            duration = d
        } else if let seconds = Double(argument), seconds >= 0, seconds.isFinite {
            duration = .milliseconds(Int64((seconds * 1000).rounded()))
        } else {
            return nil
        }
    }

    var defaultValueDescription: String { DurationText.format(duration) }
}
