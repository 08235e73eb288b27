import Foundation
import Synchronization
import Testing
import VigilCore
import VigilTestKit

@testable import VigilEngine

/// A running engine is upgraded by restarting it on a new release: its learned state must come
/// through. `Fixtures/upgrade/` holds a checkpoint written by the release before the runtime
/// restructuring (format 1), its topology, the events that followed it and the scores the
/// writing pipeline gave them. Every later format change adds a fixture of its own here.
@Suite(.ownThread) struct UpgradeTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/upgrade")
    static let topology = try! TopologyLoader.load(path: directory.appendingPathComponent("topology.yaml").path)

    /// Collects every scored record's final score by offset.
    final class Scores: PipelineSink {
        let byOffset = Mutex<[Int64: Double]>([:])
        func complete(_ chunk: InputChunk) {
            byOffset.withLock { s in for i in 0..<chunk.count { s[chunk.position(i).offset] = chunk.score(i) } }
        }
    }

    static func fixture() throws -> EngineCheckpoint {
        let bytes = try Data(contentsOf: directory.appendingPathComponent("checkpoint-v1.vgck"))
        return try EngineCheckpoint.decode(Array(bytes), topology: topology.name)
    }

    @Test func theFormerFormatStillDecodes() throws {
        let checkpoint = try Self.fixture()
        #expect(checkpoint.bodyVersion == 1)
        #expect(checkpoint.sequence == 7)
        #expect(checkpoint.workerCount == 2)
        #expect(checkpoint.entities == 400)
        #expect(checkpoint.modelVersions == ["iforest@f95db30d", "fraud_lr@6d972931"])
        #expect(checkpoint.offsets == [SourceOffset(topic: "payments", partition: 0, offset: 5000)])
    }

    /// Format 2 (the canonical model versions, before manifests): written by this release's
    /// predecessor from `tail-events.jsonl`'s first 3,000 events.
    @Test func format2StillDecodesAndRestoresWarmWithoutAManifest() throws {
        let bytes = try Data(contentsOf: Self.directory.appendingPathComponent("checkpoint-v2.vgck"))
        let checkpoint = try EngineCheckpoint.decode(Array(bytes), topology: Self.topology.name)
        #expect(checkpoint.bodyVersion == 2)
        #expect(checkpoint.manifest == nil)
        let pipeline = try Pipeline(topology: Self.topology, workers: 2, sink: Scores())
        #expect(checkpoint.modelVersions == pipeline.modelVersions)
        let report = try pipeline.restore(checkpoint)
        #expect(report.cold.isEmpty, "cold: \(report.cold)")
        #expect(report.migrated.isEmpty)
        pipeline.start()
        pipeline.finish()
    }

    /// Format 3 adds the manifest; it survives the round trip, and an unreadable one is no
    /// reason to refuse the state.
    @Test func format3CarriesTheManifest() throws {
        let bytes = try Data(contentsOf: Self.directory.appendingPathComponent("checkpoint-v2.vgck"))
        var checkpoint = try EngineCheckpoint.decode(Array(bytes), topology: Self.topology.name)
        let manifest = CheckpointManifest(configHash: Self.topology.configHash, seeds: ["iforest": 7, "fraud_lr": 0])
        checkpoint.manifest = manifest
        let again = try EngineCheckpoint.decode(checkpoint.encode(), topology: Self.topology.name)
        #expect(again.bodyVersion == EngineCheckpoint.currentBodyVersion)
        #expect(again.manifest == manifest)
        #expect(again.manifest?.configHash?.count == 64)
        #expect(CheckpointManifest(json: "{not json") == nil)
        #expect(again.entities == checkpoint.entities)
    }

    /// The frozen legacy formula gives exactly the versions the former release recorded.
    @Test func legacyVersionsMatchWhatTheFormerReleaseRecorded() throws {
        let checkpoint = try Self.fixture()
        let legacy = Self.topology.models.map { $0.legacyVersion(planSignature: checkpoint.planSignature) }
        #expect(legacy == checkpoint.modelVersions)
    }

    @Test func itRestoresWarmAndScoresWhatFollowedAsTheWritingReleaseDid() throws {
        let checkpoint = try Self.fixture()
        let sink = Scores()
        let pipeline = try Pipeline(topology: Self.topology, workers: 2, sink: sink)
        let report = try pipeline.restore(checkpoint)
        #expect(report.cold.isEmpty, "cold after the upgrade: \(report.cold)")
        let versions = pipeline.modelVersions
        #expect(
            Set(report.restored).isSuperset(of: [
                "windows", "model " + versions[0], "model " + versions[1], "threshold",
            ]),
            "\(report.restored)")
        #expect(report.migrated == ["fraud_lr@6d972931 → \(versions[1])", "iforest@f95db30d → \(versions[0])"])

        // The 1,000 events after the cut, in the same chunks as when the fixture was written.
        pipeline.start()
        let text = try Data(contentsOf: Self.directory.appendingPathComponent("tail-events.jsonl"))
        let lines = text.split(separator: 0x0A).map { Array($0) }
        var offset: Int64 = 5000
        for start in stride(from: 0, to: lines.count, by: 250) {
            let part = Array(lines[start..<min(lines.count, start + 250)])
            let base = offset
            pipeline.submit(
                count: part.count, topics: ["payments"], raw: StateAndReloadTests.Lines(lines: part),
                position: { (0, 0, base + Int64($0), nil) }, arrivalMs: 0)
            offset += Int64(part.count)
        }
        pipeline.finish()
        let expected = try String(contentsOf: Self.directory.appendingPathComponent("tail-scores.txt"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
            .map { line -> (Int64, Double) in
                let f = line.split(separator: " ")
                return (Int64(f[0])!, Double(bitPattern: UInt64(f[1], radix: 16)!))
            }
        let got = sink.byOffset.withLock { $0 }
        #expect(expected.count == 1000)
        let differing = expected.filter { got[$0.0]?.bitPattern != $0.1.bitPattern }
        #expect(
            differing.isEmpty,
            "\(differing.count) scores differ from the writing release's, first at \(differing.first.map { "\($0.0)" } ?? "-")"
        )
    }

    /// Golden: one model version and one alert id of the fixture topology. Either changing
    /// changes every alert id downstream consumers de-duplicate on; only a deliberate format
    /// change, with a migration, may update these.
    @Test func modelVersionsAndAlertIdsArePinned() throws {
        let versions = try Pipeline.modelVersions(of: Self.topology)
        #expect(versions == ["iforest@232fd158", "fraud_lr@7b91d9ad"])
        let position = SourcePosition(topic: "payments", partition: 3, offset: 123_456)
        #expect(AlertWriter.alertID(position, versions: versions) == "2241d34d8831589e")
    }
}
