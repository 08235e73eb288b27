import Foundation
import Synchronization
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@testable import VigilEngine

/// Checkpoints of the whole engine state, the classification of topology changes, and the file
/// watcher, without a broker.
@Suite(.ownThread) struct StateAndReloadTests {
    static let text = try! String(
        contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
    static let topology = try! TopologyLoader.parse(text)

    /// Events as raw records.
    struct Lines: RawRecords {
        let lines: [[UInt8]]
        func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
            lines[i].withUnsafeBytes { body($0) }
        }
        func key(_ i: Int) -> [UInt8]? { nil }
    }

    /// Counts the chunks it is handed.
    final class Counting: PipelineSink {
        let chunks = Atomic<Int>(0)
        func complete(_ chunk: InputChunk) { chunks.add(1, ordering: .relaxed) }
    }

    /// A pipeline that has seen `n` generated events (with labels), its workers still running.
    static func warmPipeline(_ n: Int, workers: Int = 2, topology: Topology = topology) throws -> Pipeline {
        let pipeline = try Pipeline(topology: topology, workers: workers, sink: Counting())
        pipeline.start()
        let data = EngineIntegrationTests.generated(n, seed: 4)
        var labels: [LabelRecord] = []
        let decoder = LabelDecoder(source: topology.models[1].kind.labels!, timeField: "ts")
        for l in data.labels {
            if case .success(let label) = l.withUnsafeBytes({ decoder.decode($0) }) { labels.append(label.record) }
        }
        for start in stride(from: 0, to: n, by: 5000) {
            let part = Array(data.events[start..<min(n, start + 5000)])
            pipeline.submit(
                count: part.count, topics: ["payments"], raw: Lines(lines: part),
                position: { (0, 0, Int64(start + $0), nil) }, arrivalMs: 0)
            pipeline.submitLabels(Array(labels[min(labels.count, start / 2)..<min(labels.count, start / 2 + 2500)]))
        }
        return pipeline
    }

    static func checkpoint(_ pipeline: Pipeline, states: [WorkerState], sequence: UInt64 = 1) -> EngineCheckpoint {
        EngineCheckpoint(
            sequence: sequence, createdMs: 1_700_000_000_000, topology: topology.name,
            planSignature: pipeline.plan.signature,
            modelVersions: pipeline.modelVersions,
            offsets: [SourceOffset(topic: "payments", partition: 0, offset: 20_000)],
            reason: "test", workers: states)
    }

    @Test func aCheckpointRestoresEveryWorkerExactly() throws {
        let pipeline = try Self.warmPipeline(20_000)
        let states = pipeline.cut().wait()
        pipeline.finish()
        let bytes = Self.checkpoint(pipeline, states: states).encode()
        let decoded = try EngineCheckpoint.decode(bytes, topology: Self.topology.name)
        #expect(decoded.sequence == 1)
        #expect(decoded.offsets == [SourceOffset(topic: "payments", partition: 0, offset: 20_000)])
        #expect(decoded.modelVersions == pipeline.modelVersions)
        #expect(decoded.entities == pipeline.summary().entities)
        #expect(
            Set(decoded.sectionNames(worker: 0)).isSuperset(of: [
                "features", "threshold", "labels", "metrics", "weights",
            ]))

        let restored = try Pipeline(topology: Self.topology, workers: 2, sink: Counting())
        let report = try restored.restore(decoded)
        #expect(report.cold.isEmpty)
        let again = restored.captureStopped()
        for w in 0..<2 {
            for (name, section) in states[w].sections {
                let same = again[w].section(name) == section
                #expect(same, "worker \(w): \(name) changed through encode, decode and restore")
            }
        }
        restored.finish()
    }

    /// With labels and two models, each worker learns the ensemble's weights from the joined
    /// labels and checkpoints them; `ensemble: { weights: fixed }` learns none.
    @Test func theWorkersLearnTheEnsembleWeightsUnlessTheTopologyFixesThem() throws {
        let pipeline = try Self.warmPipeline(20_000)
        let states = pipeline.cut().wait()
        pipeline.finish()
        let names = pipeline.modelVersions
        for state in states {
            let bytes = try #require(state.section("weights"))
            var learned = LearnedWeights(prior: [1, 2])
            var input = BinaryReader(bytes)
            try learned.restore(names: names, from: &input)
            #expect(learned.labels > 1000 && learned.positives > 0, "labels \(learned.labels)")
            #expect(learned.current != [1, 2], "the weights moved from the topology's: \(learned.current)")
        }

        let fixed = try TopologyLoader.parse(Self.text + "\nensemble: { weights: fixed }\n")
        let plain = try Self.warmPipeline(5_000, topology: fixed)
        let plainStates = plain.cut().wait()
        plain.finish()
        #expect(plainStates.allSatisfy { $0.section("weights") == nil })
    }

    /// `kind: counting_isolation_forest` runs in the pipeline like the default forest: it warms
    /// up, counts in the ensemble, and comes back exactly from a checkpoint.
    @Test func theCountingForestScoresAndRestoresInThePipeline() throws {
        let counting = try TopologyLoader.parse(
            Self.text.replacingOccurrences(of: "kind: isolation_forest", with: "kind: counting_isolation_forest"))
        guard case .countingIsolationForest = counting.models[0].kind else {
            Issue.record("the topology did not select the counting forest")
            return
        }
        let pipeline = try Self.warmPipeline(20_000, topology: counting)
        let states = pipeline.cut().wait()
        pipeline.finish()
        #expect(pipeline.summary().scored == 20_000)
        #expect(pipeline.workers.allSatisfy { $0.models.isReady(0) }, "the counting forest warmed up")
        let restored = try Pipeline(topology: counting, workers: 2, sink: Counting())
        let report = try restored.restore(Self.checkpoint(pipeline, states: states))
        #expect(report.cold.isEmpty)
        let again = restored.captureStopped()
        for w in 0..<2 {
            for (name, section) in states[w].sections {
                #expect(again[w].section(name) == section, "worker \(w): \(name) changed through a restore")
            }
        }
        restored.finish()
    }

    @Test func damagedOrForeignCheckpointsAreRefusedWithTheirReason() throws {
        let pipeline = try Self.warmPipeline(5000)
        pipeline.finish()
        let bytes = Self.checkpoint(pipeline, states: pipeline.captureStopped()).encode()
        var flipped = bytes
        flipped[bytes.count / 2] ^= 1
        #expect(throws: CheckpointError.self) { try EngineCheckpoint.decode(flipped, topology: Self.topology.name) }
        do {
            _ = try EngineCheckpoint.decode(flipped, topology: Self.topology.name)
        } catch {
            #expect(error.code == .corrupt)
        }
        do {
            _ = try EngineCheckpoint.decode(Array(bytes.prefix(bytes.count - 100)), topology: Self.topology.name)
            Issue.record("a truncated checkpoint decoded")
        } catch {
            #expect(error.code == .truncated)
        }
        do {
            _ = try EngineCheckpoint.decode(bytes, topology: "another-topology")
            Issue.record("another topology's checkpoint decoded")
        } catch {
            #expect(error.code == .wrongSchema)
        }
    }

    /// Every entity's window row (by its key hash) in feature sections (`encodeState`'s layout:
    /// a 100-byte header, then the rows).
    static func windows(_ states: [WorkerState]) throws -> [UInt64: [UInt8]] {
        var rows: [UInt64: [UInt8]] = [:]
        for state in states {
            let bytes = try #require(state.section("features"))
            let stride = Int(bytes[16..<20].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
            let count = Int(bytes[92..<100].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            #expect(bytes.count == 100 + count * stride)
            for r in 0..<count {
                let row = Array(bytes[100 + r * stride..<100 + (r + 1) * stride])
                let key = row.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                #expect(rows.updateValue(row, forKey: key) == nil, "an entity held by two workers")
            }
        }
        return rows
    }

    /// The worker count is a deployment choice (it defaults to the core count): a checkpoint
    /// written by 2 workers restores into 1 and 3 with every entity's windows as they were, and
    /// the windows go on to evolve exactly as in the 2 workers' run.
    @Test(arguments: [1, 3])
    func aCheckpointOfTwoWorkersRestoresIntoAnotherWorkerCountWithIdenticalWindows(workers: Int) async throws {
        // Seconds of pipeline work: off the two cooperative threads, which other suites need.
        try await offPool { try Self.reshardsIdentically(workers: workers) }
    }

    static func reshardsIdentically(workers: Int) throws {
        let pipeline = try Self.warmPipeline(20_000)
        pipeline.finish()
        let checkpoint = try EngineCheckpoint.decode(
            Self.checkpoint(pipeline, states: pipeline.captureStopped()).encode(), topology: Self.topology.name)
        let written = try Self.windows(pipeline.captureStopped())
        #expect(written.count > 2000)

        let data = EngineIntegrationTests.generated(25_000, seed: 4)
        let next = Array(data.events[20_000...])
        func continued(_ count: Int) throws -> (
            restored: [UInt64: [UInt8]], after: [UInt64: [UInt8]], report: Worker.RestoreReport
        ) {
            let p = try Pipeline(topology: Self.topology, workers: count, sink: Counting())
            let report = try p.restore(checkpoint)
            let restored = try Self.windows(p.captureStopped())
            p.start()
            p.submit(
                count: next.count, topics: ["payments"], raw: Lines(lines: next),
                position: { (0, 0, Int64(20_000 + $0), nil) }, arrivalMs: 0)
            p.finish()
            #expect(p.summary().scored == next.count)
            return (restored, try Self.windows(p.captureStopped()), report)
        }
        let same = try continued(2)
        let other = try continued(workers)
        #expect(other.restored == written, "windows differ right after the restore into \(workers) workers")
        #expect(other.after == same.after, "windows differ after 5,000 more events in \(workers) workers")
        #expect(other.report.restored.contains("windows re-sharded from 2 workers"))
        #expect(other.report.restored.contains("models merged from 2 workers"))
        #expect(!other.report.cold.contains("windows"))
        #expect(other.report.cold.contains { $0.hasPrefix("waiting events") })
    }

    @Test func aStructuralChangeKeepsWhatDidNotChange() throws {
        let pipeline = try Self.warmPipeline(5000)
        pipeline.finish()
        let checkpoint = Self.checkpoint(pipeline, states: pipeline.captureStopped())
        // Fewer trees: a new forest version, while the regression and the windows stay.
        let changed = try TopologyLoader.parse(Self.text.replacingOccurrences(of: "trees: 100", with: "trees: 60"))
        let next = try Pipeline(topology: changed, workers: 2, sink: Counting())
        let report = try next.restore(checkpoint)
        #expect(report.cold == ["model " + next.modelVersions[0]])
        #expect(report.restored.contains("windows"))
        #expect(report.restored.contains("model " + next.modelVersions[1]))
        // New features: the windows start empty.
        let moreFeatures = try TopologyLoader.parse(
            Self.text.replacingOccurrences(
                of: "  - { name: mcc,",
                with: "  - { name: count_1m, kind: window, key: card_id, window: 1m, agg: count }\n  - { name: mcc,"))
        let rebuilt = try Pipeline(topology: moreFeatures, workers: 2, sink: Counting())
        #expect(try rebuilt.restore(checkpoint).cold.contains("windows"))
    }

    /// An edit reverted by reload brings the model version back warm: the version the edit
    /// replaced is kept as retired state in the checkpoints in between.
    @Test func aRevertedModelEditRestoresThePreviousVersionWarm() throws {
        let pipeline = try Self.warmPipeline(5000)
        pipeline.finish()
        let original = Self.checkpoint(pipeline, states: pipeline.captureStopped())
        let forest = try #require(original.section("model:" + pipeline.modelVersions[0], worker: 0))
        let edited = try TopologyLoader.parse(Self.text.replacingOccurrences(of: "trees: 100", with: "trees: 60"))
        let during = try Pipeline(topology: edited, workers: 2, sink: Counting())
        _ = try during.restore(original)
        let between = Self.checkpoint(during, states: during.captureStopped(), sequence: 2)
        #expect(between.sectionNames(worker: 0).contains("retired:model:" + pipeline.modelVersions[0]))
        // Reverted: the first version comes back with the state it had.
        let reverted = try Pipeline(topology: Self.topology, workers: 2, sink: Counting())
        let report = try reverted.restore(between)
        #expect(report.restored.contains("model " + pipeline.modelVersions[0] + " (retired)"))
        #expect(report.cold.isEmpty)
        let after = Self.checkpoint(reverted, states: reverted.captureStopped(), sequence: 3)
        #expect(after.section("model:" + pipeline.modelVersions[0], worker: 0) == forest)
        #expect(after.sectionNames(worker: 0).contains("retired:model:" + during.modelVersions[0]))
    }

    @Test(arguments: [
        (
            "target_alert_rate: 0.005", "target_alert_rate: 0.01", TopologyChange.Kind.tunable,
            "threshold.target_alert_rate"
        ),
        ("suppress: 10m", "suppress: 1m", .tunable, "threshold.suppress"),
        ("    weight: 2\n", "    weight: 3\n", .tunable, "models[fraud_lr].weight"),
        ("explain: 3", "explain: 5", .tunable, "alerts.explain"),
        ("trees: 100", "trees: 50", .structural, "models[iforest].kind"),
        ("window: 10m, agg: count", "window: 5m, agg: count", .structural, "features"),
        ("group: vigil-card-payments", "group: other", .restart, "source.kafka.group"),
        ("brokers: 127.0.0.1:9092", "brokers: 127.0.0.1:9093", .restart, "source.kafka.brokers"),
        (
            "    consumer_properties:", "    producer_properties: { linger.ms: \"1\" }\n    consumer_properties:",
            .restart, "source.kafka.producer_properties.linger.ms"
        ),
        ("every: 30s", "every: 1m", .restart, "checkpoints.every"),
        ("topic: payments-alerts", "topic: other-alerts", .restart, "alerts.topic"),
        ("\nthreshold:", "\nensemble: { weights: fixed }\nthreshold:", .structural, "ensemble.weights"),
    ])
    func changesAreClassifiedByWhatTheyCost(old: String, new: String, kind: TopologyChange.Kind, path: String) throws {
        #expect(Self.text.contains(old))
        let edited = try TopologyLoader.parse(Self.text.replacingOccurrences(of: old, with: new))
        let change = TopologyChange.between(Self.topology, edited)
        #expect(change.kind == kind)
        #expect(change.items.map(\.path) == [path])
    }

    /// The audit names each changed key with its values as a topology file writes them, and never
    /// prints a secret.
    @Test func changesShowTheirValuesAsWrittenAndHideSecrets() throws {
        let edited = try TopologyLoader.parse(
            Self.text.replacingOccurrences(of: "suppress: 10m", with: "suppress: 90s")
                .replacingOccurrences(
                    of: "      fetch.wait.max.ms: \"10\"",
                    with: "      fetch.wait.max.ms: \"10\"\n      sasl.password: \"hunter2\""))
        // (In consumer_properties here; the comparison is the same for both mappings.)
        let change = TopologyChange.between(Self.topology, edited)
        let suppress = try #require(change.items.first { $0.path == "threshold.suppress" })
        #expect((suppress.old, suppress.new) == ("10m", "90s"))
        let secret = try #require(change.items.first { $0.path == "source.kafka.consumer_properties.sasl.password" })
        #expect(secret.kind == .restart)
        #expect((secret.old, secret.new) == ("(none)", "[redacted]"))
        #expect(!change.items.contains { $0.old.contains("hunter2") || $0.new.contains("hunter2") })
    }

    @Test func bootIsAStructuralChangeFromNothing() {
        #expect(TopologyChange.between(nil, Self.topology).kind == .structural)
        #expect(TopologyChange.between(Self.topology, Self.topology).kind == nil)
    }

    /// The watcher on a manual clock: each poll happens when the test advances the clock, so
    /// nothing here waits on wall time.
    @Test func theWatcherSeesEditsAndReplacements() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-watch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("t.yaml").path
        try "a: 1\n".write(toFile: file, atomically: false, encoding: .utf8)
        let seen = Atomic<Int>(0)
        let clock = ManualClock()
        let watcher = FileWatcher(path: file, interval: .milliseconds(500), clock: EngineClock(clock)) {
            seen.add(1, ordering: .relaxed)
        }
        let task = Task { try await watcher.run() }
        defer { task.cancel() }
        await clock.waitForSleeps(1)
        /// One poll: advance past the interval and wait until the watcher is asleep again.
        func poll() async {
            let sleeps = clock.sleepsBegun
            clock.advance(by: .milliseconds(500))
            await clock.waitForSleeps(sleeps + 1)
        }
        await poll()
        #expect(seen.load(ordering: .relaxed) == 0)
        try "a: 22\n".write(toFile: file, atomically: false, encoding: .utf8)  // edited in place
        await poll()
        #expect(seen.load(ordering: .relaxed) == 0, "reported only once two polls agree")
        await poll()
        #expect(seen.load(ordering: .relaxed) == 1)
        try "a: 333\n".write(toFile: file, atomically: true, encoding: .utf8)  // a new file renamed over it
        await poll()
        await poll()
        #expect(seen.load(ordering: .relaxed) == 2)
        for _ in 0..<3 { await poll() }
        #expect(seen.load(ordering: .relaxed) == 2, "one call per change")
    }
}
