import ArgumentParser
import Foundation
import Logging
import VigilEngine
import VigilKafka

@main
struct Vigil: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "Streaming fraud and anomaly detection over Kafka.",
        version: VersionInfo.text,
        subcommands: [
            RunCommand.self, ReplayCommand.self, EvaluateCommand.self, GenerateCommand.self, Validate.self,
            CreateTopics.self,
            CheckpointsCommand.self, ModelsCommand.self, StatusCommand.self, ReloadCommand.self,
            AlertsCommand.self,
            Doctor.self,
        ])
}

/// `vigil validate --topology FILE…`: checks topology files and lists every problem.
struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate topology files; every problem is listed with its path and line.")

    @Option(name: .customLong("topology"), help: "Topology file (YAML); repeat it for several.")
    var topologies: [String] = []

    /// Earlier releases took the files as arguments; still read, with a warning.
    @Argument(help: ArgumentHelp(visibility: .hidden)) var files: [String] = []

    func validate() throws {
        if topologies.isEmpty && files.isEmpty { throw ValidationError("give --topology FILE (repeatable)") }
    }

    func run() throws {
        if !files.isEmpty { warnPositionalTopology("validate") }
        var failed = 0
        for file in topologies + files {
            do {
                let t = try TopologyLoader.load(path: file)
                print(
                    "ok: \(file) (topology \(t.name): \(t.schema.fields.count) fields, \(t.features.count) features, \(t.models.count) models)"
                )
            } catch {
                failed += 1
                let n = error.issues.count
                printError("invalid: \(file) (\(n) problem\(n == 1 ? "" : "s"))\n\(error)")
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

/// `vigil doctor`: checks the native libraries and the whole Kafka path against a broker.
struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check librdkafka and a broker: produce sample events and read them back.")

    @OptionGroup var brokers: BrokerOption

    @OptionGroup var log: LogOption

    @Option(help: "Topic to use (default: a new vigil-check-… topic).")
    var topic: String?

    @Option(help: "Events to send and read back.")
    var count = 5

    @Option(help: "Seconds to wait for the events to come back.")
    var timeout = 30

    func run() throws {
        print(VersionInfo.text)
        guard let servers = brokers.orEnvironment else {
            throw ValidationError("no broker: pass --brokers host:port or set KAFKA_BOOTSTRAP")
        }
        log.bootstrap()
        let check = BrokerCheck(
            clients: try KafkaClients(brokers: servers, name: "doctor", properties: brokers.propertyMap()),
            topic: topic, count: count, timeout: .seconds(timeout),
            logger: Logger(label: "vigil.kafka"))
        do {
            let report = try check.run { print($0) }
            for m in report.readBack {
                let value = m.value.map { String(decoding: $0, as: UTF8.self) } ?? "(tombstone)"
                print("  \(m.topic)[\(m.partition)]@\(m.offset) \(value)")
            }
            let seconds = report.elapsed.seconds
            print(
                "doctor: ok, \(report.produced) events produced and read back in \(String(format: "%.2f", seconds)) s")
        } catch {
            printError("doctor: failed: \(error)")
            throw ExitCode(1)
        }
    }
}

/// `vigil create-topics --topology FILE`: creates the topics a topology names that do not exist
/// yet.
struct CreateTopics: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create the topics a topology reads and writes (those missing), with its partition count.")

    @Option(help: "Topology file.")
    var topology: String?

    /// Earlier releases took the file as an argument; still read, with a warning.
    @Argument(help: ArgumentHelp(visibility: .hidden)) var positional: String?

    func validate() throws {
        if (topology == nil) == (positional == nil) { throw ValidationError("give --topology FILE") }
    }

    @OptionGroup var brokers: BrokerOption

    @OptionGroup var log: LogOption

    func run() throws {
        if positional != nil { warnPositionalTopology("create-topics") }
        let topology = try loadTopology(self.topology ?? positional!)
        let clients = try brokers.clients(for: topology)
        log.bootstrap(fallback: .warning)
        do {
            let admin = try clients.admin(logger: Logger(label: "vigil.create-topics"))
            let created = try topology.createMissingTopics(admin)
            for topic in topology.topics {
                print("\(created.contains(topic) ? "created" : "exists "): \(topic)")
            }
        } catch {
            printError("create-topics: failed: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The one warning for a topology file given as an argument rather than with `--topology`.
func warnPositionalTopology(_ command: String) {
    printError("warning: `vigil \(command) FILE` is deprecated; use `vigil \(command) --topology FILE`")
}
