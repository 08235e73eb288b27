import Foundation
import Synchronization
import Testing
import VigilCore
import VigilKafka
import VigilModels
import VigilSynthetic
import VigilTestKit

@testable import VigilEngine

/// Three instances of one consumer group, each scoring about a third of a 6-partition stream,
/// against one instance that scores all of it: with `federation:` their models reach the single
/// instance's quality (docs/scaling.md, "Models across instances").
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct FederationTests {
    /// A forest and a regression, both active: the ensemble alerts.
    static let models =
        RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "active")

    static var stream: TransactionStream.Config {
        var config = TransactionStream.Config()
        config.events = 150_000
        config.seed = 21
        config.cards = 5000
        config.fraudEpisodeRate = 0.002
        config.driftAt = nil
        config.labelDelayMs = 1000...20_000
        return config
    }

    /// The ROC-AUC of every scored event's final score and of the regression's own score, over
    /// all the instances, against the generator's truth.
    struct Quality: CustomStringConvertible {
        var final: Double
        var forest: Double
        var regression: Double
        /// The final score's ROC-AUC over the second half of the stream, once the models are warm.
        var warmFinal: Double
        var scored: Int
        var rounds: [Int]
        var description: String {
            "final \(String(format: "%.4f", final)) (second half \(String(format: "%.4f", warmFinal))), forest \(String(format: "%.4f", forest)), regression \(String(format: "%.4f", regression)) over \(scored) events; federation rounds \(rounds)"
        }
    }

    /// Runs the stream through `instances` in-process engines of one group, with or without
    /// federation every second.
    func run(instances: Int, federation: Bool, name: String) async throws -> Quality {
        let modelsTopic = TestBroker.unique("\(name)-models")
        let setup = try RolloutSetup(
            name, models: Self.models, extra: federation ? "federation: { topic: \(modelsTopic), every: 1s }" : "",
            partitions: 6)
        let engines = try (0..<instances).map { try LiveEngine(setup, workers: 1, instance: "\(name)-\($0)") }
        let services =
            federation ? engines.map { live in Task { try await Federation(engine: live.engine).run() } } : []
        for live in engines { await live.engine.waitFor(.running) }
        // Every instance holds partitions before the stream starts, so each scores its share.
        let end = ContinuousClock.now + .seconds(90)
        while engines.contains(where: { !$0.engine.consumer.assignment.contains { $0.topic == setup.source } }) {
            guard ContinuousClock.now < end else {
                throw SetupFailure(description: "the group never gave every instance partitions")
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        // Each instance's forests keep its share of the source partitions of their window.
        for live in engines {
            let expected = {
                Int((Double(live.engine.consumer.assignment.count { $0.topic == setup.source }) / 6 * 1e6).rounded())
            }
            while live.engine.stats.streamShareMillionths.load(ordering: .relaxed) != expected() {
                guard ContinuousClock.now < end else {
                    Issue.record(
                        "stream share \(live.engine.stats.streamShareMillionths.load(ordering: .relaxed)) ppm, expected \(expected())"
                    )
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        let stream = Self.stream
        let sent = try await offPool { try setup.produceStream(stream, rate: 5_000) }
        let done = ContinuousClock.now + .seconds(240)
        while engines.reduce(0, { $0 + $1.engine.stats.eventsScored }) < sent.events
            || engines.contains(where: { $0.engine.stats.labelsRead < sent.labels })
        {
            guard ContinuousClock.now < done else { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        for s in services { s.cancel() }
        let rounds = engines.map { $0.engine.stats.federatedRounds }
        for live in engines { try await live.stop() }

        var truth: [String: Bool] = [:]
        var index: [String: Int] = [:]
        for (i, t) in TransactionStream(stream).enumerated() {
            truth[t.id] = t.isFraud
            index[t.id] = i
        }
        var warmFinals: [Double] = []
        var warmLabels: [Bool] = []
        var finals: [Double] = []
        var forests: [Double] = []
        var regressions: [Double] = []
        var labels: [Bool] = []
        // A member that loses its session under a stalled broker hands its partitions on, and
        // what it had not committed is delivered again (at least once): each event counts once.
        var seen = Set<String>()
        var again = 0
        for live in engines {
            live.chunks.withLock { chunks in
                for chunk in chunks {
                    for i in 0..<chunk.count where chunk.outcome(i) == .scored || chunk.outcome(i) == .alerted {
                        guard let id = chunk.idText(i), let fraud = truth[id] else { continue }
                        guard seen.insert(id).inserted else {
                            again += 1
                            continue
                        }
                        finals.append(chunk.score(i))
                        if let at = index[id], at >= stream.events / 2 {
                            warmFinals.append(chunk.score(i))
                            warmLabels.append(fraud)
                        }
                        forests.append(chunk.modelScore(i, 0))
                        regressions.append(chunk.modelScore(i, 1))
                        labels.append(fraud)
                    }
                }
            }
        }
        #expect(labels.count == sent.events, "every event scored")
        if again > 0 { print("[federation] \(name): \(again) events scored again after a rebalance") }
        return Quality(
            final: RankingMetrics.rocAUC(scores: finals, labels: labels) ?? 0,
            forest: RankingMetrics.rocAUC(scores: forests, labels: labels) ?? 0,
            regression: RankingMetrics.rocAUC(scores: regressions, labels: labels) ?? 0,
            warmFinal: RankingMetrics.rocAUC(scores: warmFinals, labels: warmLabels) ?? 0, scored: labels.count,
            rounds: rounds)
    }

    @Test func threeFederatedInstancesReachTheQualityOfOneThatSeesTheWholeStream() async throws {
        let single = try await run(instances: 1, federation: false, name: "fed-one")
        let federated = try await run(instances: 3, federation: true, name: "fed-three")
        let alone = try await run(instances: 3, federation: false, name: "fed-alone")
        print("[federation] one instance: \(single)")
        print("[federation] three, federated: \(federated)")
        print("[federation] three, alone: \(alone)")
        print(
            "[federation] AUC gap to one instance: federated \(String(format: "%.4f", single.final - federated.final)), alone \(String(format: "%.4f", single.final - alone.final))"
        )
        #expect(federated.rounds.allSatisfy { $0 > 0 }, "every instance averaged with its peers")
        #expect(alone.rounds.allSatisfy { $0 == 0 })
        #expect(federated.final >= single.final - 0.01, "federated \(federated) against one instance \(single)")
    }
}
