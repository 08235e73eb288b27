import Foundation
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@testable import VigilEngine

/// Every input that crashed a fuzz target (Tests/Fuzz/Crashes/TARGET, kept by scripts/fuzz.sh)
/// is read again here, in the normal test build, the way the target read it: each must now be
/// refused cleanly (or accepted only when it is valid JSON).
@Suite(.ownThread) struct FuzzCrashTests {
    static let crashes = CLI.repositoryRoot.appendingPathComponent("Tests/Fuzz/Crashes")
    static let topology = try! TopologyLoader.parse(
        String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8))

    static func inputs(_ target: String) -> [(String, [UInt8])] {
        let folder = crashes.appendingPathComponent(target)
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        return files.sorted { $0.path < $1.path }.map { ($0.lastPathComponent, Array(try! Data(contentsOf: $0))) }
    }

    static func isJSONObject(_ bytes: [UInt8]) -> Bool {
        (try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) is [String: Any]
    }

    @Test func theCrashesFoundSoFarAreKept() {
        let count = ["event", "label", "checkpoint", "topology"].map { Self.inputs($0).count }.reduce(0, +)
        #expect(count >= 5, "Tests/Fuzz/Crashes holds the inputs that crashed the targets")
    }

    @Test func eventsThatCrashedAreRefusedUnlessValid() {
        var decoder = EventDecoder(source: Self.topology.source, schema: Self.topology.schema)
        var batch = EventBatch(layout: decoder.layout)
        for (name, bytes) in Self.inputs("event") {
            let accepted = (try? bytes.withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }.get()) != nil
            let valid = Self.isJSONObject(bytes)
            #expect(!accepted || valid, "event \(name) is accepted though it is not a JSON object")
        }
    }

    @Test func labelsThatCrashedAreRefusedUnlessValid() {
        let decoder = LabelDecoder(source: Self.topology.models[1].kind.labels!, timeField: "ts")
        for (name, bytes) in Self.inputs("label") {
            let accepted = (try? bytes.withUnsafeBytes { decoder.decode($0) }.get()) != nil
            let valid = Self.isJSONObject(bytes)
            #expect(!accepted || valid, "label \(name) is accepted though it is not a JSON object")
        }
    }

    /// The topology target's inputs (one took a second in the loader's "did you mean" hints):
    /// each is refused with issues, or valid and builds a pipeline.
    @Test func topologiesThatCrashedAreRefusedOrBuild() {
        for (name, bytes) in Self.inputs("topology") {
            do {
                let topology = try TopologyLoader.parse(String(decoding: bytes, as: UTF8.self))
                #expect(throws: Never.self, "topology \(name)") {
                    _ = try Pipeline(topology: topology, workers: 1, sink: FuzzSink())
                }
            } catch {
                #expect(!"\(error)".isEmpty, "topology \(name)")
            }
        }
    }

    /// A sink for pipelines that never run.
    final class FuzzSink: PipelineSink {
        func complete(_ chunk: InputChunk) {}
    }

    /// The checkpoint target's input: a first byte, then a whole checkpoint (even) or a body that
    /// gets a valid frame (odd).
    @Test func checkpointsThatCrashedAreRefused() {
        for (name, bytes) in Self.inputs("checkpoint") where !bytes.isEmpty {
            let rest = Array(bytes.dropFirst())
            let framed =
                bytes[0] & 1 == 0
                ? rest
                : Checkpoint.encode(
                    kind: EngineCheckpoint.kind, schema: EngineCheckpoint.schema(topology: "card-payments"), body: rest)
            #expect(throws: CheckpointError.self, "checkpoint \(name)") {
                try EngineCheckpoint.decode(framed, topology: "card-payments")
            }
        }
    }
}
