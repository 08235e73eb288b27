import Foundation
import Testing
import VigilCore
import VigilEngine
import VigilTestKit

/// The fairness figures of a running engine (`segments:` in `/metrics` and `/status`) against
/// the local broker: equal to those `vigil evaluate` computes from the same run's outcomes and
/// labels, and carried over a restart by the checkpoint.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct LiveFairnessTests {
    @Test func liveSegmentFiguresEqualTheOfflineOnesAndSurviveARestart() async throws {
        let models = RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "shadow")
        let setup = try RolloutSetup("fairness", models: models, extra: "segments: [channel, country]")
        let data = EngineIntegrationTests.generated(20_000, seed: 21)
        let live = try LiveEngine(setup)
        // Labels after their events, so that every label finds its event waiting.
        try await offPool { try setup.produce(data.events, keys: data.cards) }
        #expect(await live.waitFor(events: data.events.count))
        try await offPool { try setup.produce([], keys: [], labels: data.labels) }
        #expect(await live.waitFor(events: data.events.count, labels: data.labels.count))
        let figures = await live.engine.rollout.live()
        let metrics = MetricsText.render(live.engine, segments: figures.segments)
        let status = StatusJSON.render(live.engine, segments: figures.segments)
        try await live.stop()

        // Offline: the same run's outcomes (its own chunks) and the labels, as evaluate reads them.
        let recorder = OutcomeRecorder(segments: ["channel", "country"])
        for chunk in live.chunks.withLock({ $0 }) { recorder.observe(chunk) }
        var labels: [UInt64: Bool] = [:]
        for (id, fraud) in RolloutTests.labelsByID(data.labels) { labels[StableHash.hash(id)] = fraud }
        let offline = SegmentReport.reports(recorder, labels: labels)

        #expect(figures.segments == offline)
        let channel = try #require(figures.segments.first { $0.field == "channel" })
        let country = try #require(figures.segments.first { $0.field == "country" })
        print(
            "[fairness] channel: \(channel.groups.map { "\($0.value) \($0.events)/\($0.alerts)" }), DP diff \(channel.demographicParityDifference ?? .nan), EO diff \(channel.equalizedOddsDifference ?? .nan); country: \(country.groups.count) values"
        )
        #expect(channel.groups.map(\.events).reduce(0, +) == labels.count)
        #expect(country.groups.count > 3)
        #expect(channel.groups.map(\.alerts).reduce(0, +) > 0)
        #expect(channel.demographicParityDifference != nil && channel.equalizedOddsDifference != nil)

        // /metrics and /status carry the same figures.
        func sample(_ name: String, _ labels: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + "{" + labels + "}") }
                .flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        #expect(
            sample("vigil_fairness_demographic_parity_difference", "field=\"channel\"")
                == channel.demographicParityDifference)
        #expect(
            sample("vigil_fairness_equalized_odds_difference", "field=\"country\"") == country.equalizedOddsDifference)
        let first = country.groups[0]
        #expect(
            sample("vigil_segment_labelled_total", "field=\"country\",value=\"\(first.value)\"") == Double(first.events)
        )
        #expect(
            sample("vigil_segment_selection_rate", "field=\"country\",value=\"\(first.value)\"") == first.selectionRate)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        let entries = try #require(parsed["segments"] as? [[String: Any]])
        #expect(Set(entries.compactMap { $0["field"] as? String }) == ["channel", "country"])

        // A restart restores the counts from the final checkpoint.
        let again = try LiveEngine(setup)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(120))
        while !again.engine.isReady, clock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        #expect(again.engine.isReady)
        let restored = await again.engine.rollout.live()
        try await again.stop()
        #expect(restored.segments == offline)
    }
}
