import Foundation
import HummingbirdCore
import VigilCore
import VigilModels

@testable import VigilEngine

/// The fuzz targets: each reads one input the way the engine reads untrusted bytes, and traps
/// (a crash libFuzzer records) when the engine would crash or when an oracle disagrees.
enum FuzzTargets {
    typealias Target = @Sendable (UnsafeRawBufferPointer) -> Void

    nonisolated(unsafe) static var chosen: Target?

    static let all: [String: Target] = [
        "event": event, "label": label, "topology": topology, "checkpoint": checkpoint, "admin": admin,
    ]

    /// The shipped topology: its schema, time rules and label source are what the decoders use.
    static let shipped: Topology = {
        let url = FuzzSeeds.root.appendingPathComponent("topologies/card-payments.yaml")
        return try! TopologyLoader.parse(String(contentsOf: url, encoding: .utf8))
    }()

    nonisolated(unsafe) static var decoder = EventDecoder(source: shipped.source, schema: shipped.schema)
    nonisolated(unsafe) static var batch = EventBatch(layout: decoder.layout)

    /// The event decoder. An accepted event must be a JSON object to Foundation's parser too, and
    /// must add exactly one row; a refused one adds none.
    static func event(_ bytes: UnsafeRawBufferPointer) {
        for reference in [nil, Int64(1_767_225_600_000)] as [Int64?] {
            let before = batch.count
            let result = decoder.decode(
                bytes, arrivalMs: 1_767_225_600_000, referenceMs: reference, into: &batch)
            switch result {
            case .success:
                check(batch.count == before + 1, "an accepted event added \(batch.count - before) rows")
                let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
                check(object is [String: Any], "accepted what Foundation's parser refuses as an object")
            case .failure(let reason):
                check(batch.count == before, "a refused event (\(reason)) changed the batch")
            }
        }
        if batch.count > 10_000 { batch = EventBatch(layout: decoder.layout) }
    }

    /// The label decoder, with the same oracle as events.
    static func label(_ bytes: UnsafeRawBufferPointer) {
        let decoder = LabelDecoder(source: shipped.models[1].kind.labels!, timeField: "ts")
        if case .success = decoder.decode(bytes) {
            let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            check(object is [String: Any], "accepted a label that Foundation's parser refuses as an object")
        }
    }

    /// The topology loader and validator, then what a valid topology is used for: the pipeline
    /// (features, models, keyed stages) and the tunables. A topology that validates must build.
    static func topology(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let topology = try? TopologyLoader.parse(text) else { return }
        do {
            _ = try Pipeline(topology: topology, workers: 1, sink: Discard())
        } catch {
            check(false, "a topology that validates does not build: \(error)")
        }
        _ = Tunables(topology)
    }

    /// The checkpoint reader: the frame (even first byte) or, with a valid frame around it, the
    /// body (odd first byte), then a restore into a pipeline of the topology it was cut from.
    static func checkpoint(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        let name = FuzzSeeds.small.name
        let framed =
            first & 1 == 0
            ? rest
            : Checkpoint.encode(
                kind: EngineCheckpoint.kind, schema: EngineCheckpoint.schema(topology: name), body: rest)
        guard let decoded = try? EngineCheckpoint.decode(framed, topology: name) else { return }
        let pipeline = try! Pipeline(topology: FuzzSeeds.small, workers: 1, sink: Discard())
        _ = try? pipeline.restore(decoded)
    }

    /// The admin request path's reading of a request: `Authorization` header NUL URI. Only the
    /// exact bearer token may pass.
    static func admin(_ bytes: UnsafeRawBufferPointer) {
        let token = "fuzz-token-0123456789"
        let parts = bytes.split(separator: 0, maxSplits: 1, omittingEmptySubsequences: false)
        let header = parts.first.map { String(decoding: UnsafeRawBufferPointer(rebasing: $0), as: UTF8.self) }
        let uri = URI(
            parts.count > 1 ? String(decoding: UnsafeRawBufferPointer(rebasing: parts[1]), as: UTF8.self) : "")
        let refusal = AdminRequest.authorize(header, token: token)
        check((refusal == nil) == (header == "Bearer " + token), "the token check let a wrong header pass")
        check(AdminRequest.authorize(header, token: nil) == .noToken, "a request passed without a configured token")
        _ = AdminRequest.actor(uri)
        _ = AdminRequest.modelName(uri)
        _ = uri.path
    }

    /// A failed oracle is a crash, with the reason on standard error.
    static func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        if !condition {
            FileHandle.standardError.write(Data("vigil-fuzz: \(message())\n".utf8))
            abort()
        }
    }

    /// A sink for pipelines that never run.
    final class Discard: PipelineSink {
        func complete(_ chunk: InputChunk) {}
    }
}
