import Foundation
import VigilCore
import VigilModels
import VigilSynthetic

@testable import VigilEngine

/// The seed corpora of `Tests/Fuzz/Corpus`, made from the generator, the shipped topologies and a
/// real checkpoint, so that they can be made again when a format changes.
enum FuzzSeeds {
    /// The repository (this file is Tests/Fuzz/VigilFuzz/FuzzSeeds.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// The shipped topology with small models, so that its checkpoint is a seed of a few KB.
    static let small: Topology = {
        let url = root.appendingPathComponent("topologies/card-payments.yaml")
        let text = try! String(contentsOf: url, encoding: .utf8)
            .replacingOccurrences(of: "trees: 100", with: "trees: 2")
            .replacingOccurrences(of: "sample: 256", with: "sample: 16")
            .replacingOccurrences(of: "warmup_events: 2000", with: "warmup_events: 50")
        return try! TopologyLoader.parse(text)
    }()

    /// Records as the pipeline reads them.
    struct Lines: RawRecords {
        let lines: [[UInt8]]
        func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            lines[i].withUnsafeBytes { body($0) }
        }
        func key(_ i: Int) -> [UInt8]? { nil }
    }

    static func write(to directory: URL) throws {
        var config = TransactionStream.Config()
        config.events = 400
        config.cards = 40
        config.seed = 3
        config.fraudEpisodeRate = 0.02
        var events: [[UInt8]] = []
        var labels: [[UInt8]] = []
        for record in SyntheticEvents(config) {
            switch record {
            case .event(_, _, let json): events.append(json)
            case .label(_, let json): labels.append(json)
            }
        }
        let broken = [
            #"{"txn_id":"b1","card_id":"#, #"{"txn_id":"b2","card_id":"c1","ts":1767225600000,"amount":"lots"}"#,
            #"[1,2,3]"#, #"{"txn_id":"b3","card_id":"c1","ts":"2026-01-01T00:00:00.5+01:00","amount":1e308}"#,
            #"{"txn_id":"b4","card_id":"\ud83d\ude00","ts":1767225600000,"amount":-0.0,"x":[{"y":null}]}"#,
        ]
        try save(events.prefix(12).map { $0 } + broken.map { Array($0.utf8) }, "event", to: directory)
        let labelSeeds =
            labels.prefix(8).map { $0 }
            + [
                #"{"txn_id":"t1","is_fraud":"yes"}"#, #"{"txn_id":"t2","is_fraud":0,"ts":"2026-01-01T00:00:00Z"}"#,
            ].map { Array($0.utf8) }
        try save(labelSeeds, "label", to: directory)
        let topologies = try FileManager.default.contentsOfDirectory(
            at: root.appendingPathComponent("topologies"), includingPropertiesForKeys: nil
        ).filter { $0.pathExtension == "yaml" }.sorted { $0.path < $1.path }
        try save(topologies.map { Array(try Data(contentsOf: $0)) }, "topology", to: directory)
        let admin = [
            "Bearer fuzz-token-0123456789\0/models/promote?name=fraud_lr&by=ci&reason=a%20b",
            "Bearer wrong\0/models/rollback?name=&by=%ZZ", "\0/reload?path=/etc/passwd",
        ]
        try save(admin.map { Array($0.utf8) }, "admin", to: directory)
        let frame = try checkpointFrame(events: events, labels: labels)
        let body = try Checkpoint.decode(
            frame, kind: EngineCheckpoint.kind, schema: EngineCheckpoint.schema(topology: small.name))
        try save([[0] + frame, [1] + body], "checkpoint", to: directory)
    }

    /// A checkpoint of `small` after the events and labels, as the engine writes it.
    static func checkpointFrame(events: [[UInt8]], labels: [[UInt8]]) throws -> [UInt8] {
        let pipeline = try Pipeline(topology: small, workers: 1, sink: FuzzTargets.Discard())
        pipeline.start()
        let decoder = LabelDecoder(source: small.models[1].kind.labels!, timeField: "ts")
        pipeline.submit(
            count: events.count, topics: ["payments"], raw: Lines(lines: events),
            position: { (0, 0, Int64($0), nil) }, arrivalMs: 0)
        pipeline.submitLabels(
            labels.compactMap { l in
                guard case .success(let d) = l.withUnsafeBytes({ decoder.decode($0) }) else { return nil }
                return d.record
            })
        let states = pipeline.cut().wait()
        pipeline.finish()
        return EngineCheckpoint(
            sequence: 1, createdMs: 1_767_225_600_000, topology: small.name, planSignature: pipeline.plan.signature,
            modelVersions: pipeline.modelVersions,
            offsets: [SourceOffset(topic: "payments", partition: 0, offset: Int64(events.count))],
            reason: "fuzz seed", workers: states
        ).encode()
    }

    static func save(_ inputs: [[UInt8]], _ target: String, to directory: URL) throws {
        let folder = directory.appendingPathComponent(target)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (i, input) in inputs.enumerated() {
            try Data(input).write(to: folder.appendingPathComponent(String(format: "seed-%03d", i)))
        }
    }
}
