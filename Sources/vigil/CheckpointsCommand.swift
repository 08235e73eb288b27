import ArgumentParser
import Foundation
import Logging
import VigilEngine

/// `vigil checkpoints list`: the checkpoints a topology keeps, newest first.
struct CheckpointsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoints", abstract: "Inspect a topology's checkpoints.", subcommands: [List.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "List the checkpoints kept (newest first): time, offsets, model versions, size; and those that do not load."
        )

        @OptionGroup var topology: TopologyOption

        @OptionGroup var brokers: BrokerOption

        @OptionGroup var instance: InstanceOption

        @OptionGroup var log: LogOption

        func run() throws {
            let topology = try self.topology.load()
            guard let spec = topology.checkpoints else {
                printError("checkpoints: topology \(topology.name) has no checkpoints section")
                throw ExitCode(1)
            }
            log.bootstrap(fallback: .warning)
            let logger = Logger(label: "vigil.checkpoints")
            let store = CheckpointStore(
                spec: spec, clients: try brokers.clients(for: topology), instance: instance.name, logger: logger)
            let scan: CheckpointStore.Scan
            do {
                scan = try store.scan()
            } catch {
                printError("checkpoints: \(error)")
                throw ExitCode(1)
            }
            print(
                "checkpoints of \(topology.name) (topic \(spec.topic)\(spec.directory.map { ", directory \($0)" } ?? ""), keep \(spec.keep)):"
            )
            if scan.stored.isEmpty { print("  none") }
            let formatter = ISO8601DateFormatter()
            // One entry per checkpoint, with every copy's location; a copy that does not load
            // is listed with the reason.
            var order: [UInt64] = []
            var copies: [UInt64: [CheckpointStore.Stored]] = [:]
            for stored in scan.stored {
                if copies[stored.sequence] == nil { order.append(stored.sequence) }
                copies[stored.sequence, default: []].append(stored)
            }
            for sequence in order {
                var loaded: (EngineCheckpoint, Int)?
                var good: [String] = []
                for stored in copies[sequence]! {
                    do {
                        if loaded == nil {
                            loaded = (
                                try EngineCheckpoint.decode(stored.bytes, topology: topology.name), stored.bytes.count
                            )
                        } else {
                            _ = try EngineCheckpoint.decode(stored.bytes, topology: topology.name)
                        }
                        good.append(stored.location)
                    } catch {
                        print("  #\(sequence)  DOES NOT LOAD: \(error)  [\(stored.location)]")
                    }
                }
                guard let (c, bytes) = loaded else { continue }
                let time = formatter.string(from: Date(timeIntervalSince1970: Double(c.createdMs) / 1000))
                let size = String(format: "%.1f MB", Double(bytes) / 1e6)
                print(
                    "  #\(c.sequence)  \(time)  \(c.reason)  \(size)  \(c.entities) entities  \(c.workerCount) workers  [\(good.joined(separator: ", "))]"
                )
                print(
                    "      offsets: \(c.offsets.map { "\($0.topic)[\($0.partition)]@\($0.offset)" }.joined(separator: " "))"
                )
                print("      models:  \(c.modelVersions.joined(separator: " "))")
                if let m = c.manifest {
                    print(
                        "      written by vigil \(m.build.vigil) (\(m.build.gitCommit), librdkafka \(m.build.librdkafka)), topology hash \(m.configHash ?? "none")"
                    )
                }
            }
            for s in scan.skipped {
                print("  #\(s.sequence)  skipped: \(s.reason)  [\(s.location)]")
            }
        }
    }
}
