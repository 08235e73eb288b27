import Foundation
import Prometheus
import Testing
import VigilTestKit

@testable import VigilEngine

/// The engine's figures through swift-metrics and the Prometheus registry: what a replay
/// records equals its summary, the no-op backend records nothing, and the figures read at scrape
/// time follow their source (counters brought up, reset after a drop, series that went away
/// removed).
@Suite(.ownThread) struct EngineMetricsTests {
    /// The samples of a Prometheus text, by `name{labels}`.
    static func samples(_ text: String) -> [String: Double] {
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            out[String(line[..<space])] = Double(line[line.index(after: space)...])
        }
        return out
    }

    @Test func aReplayRecordsWhatItsSummarySaysAndTheNoOpBackendNothing() throws {
        let files = try ReplayTests.Files(events: 12_000, bad: ReplayTests.broken)
        var replay = Replay(topology: ReplayTests.topology, input: files.events)
        replay.scores = files.path("scores.jsonl")
        replay.metrics = EngineMetrics()
        let summary = try replay.run()
        let text = replay.metrics!.text
        let m = Self.samples(text)
        #expect(m["vigil_events_total"] == Double(summary.events))
        #expect(m["vigil_events_scored_total"] == Double(summary.scored))
        #expect(m["vigil_alerts_total"] == Double(summary.alerts))
        #expect(m["vigil_score_count"] == Double(summary.scored))
        #expect(m["vigil_score_bucket{le=\"+Inf\"}"] == Double(summary.scored))
        #expect(m["vigil_dead_letters_total{reason=\"malformed_json\"}"] == 3)
        let dead = m.filter { $0.key.hasPrefix("vigil_dead_letters_total{") }.values.reduce(0, +)
        #expect(dead == Double(summary.deadLetterTotal))
        #expect((m["vigil_stage_seconds_count{stage=\"process\"}"] ?? 0) > 0)
        #expect(text.contains("# HELP vigil_events_total Source records read"))
        #expect(text.contains("# TYPE vigil_score histogram"))

        let off = EngineMetrics.off
        replay.metrics = off
        replay.scores = files.path("again.jsonl")
        _ = try replay.run()
        #expect(off.text.isEmpty)
    }

    @Test func scrapeTimeFiguresFollowTheirSourceAndDropWhatWentAway() {
        let registry = PrometheusCollectorRegistry()
        var state = ScrapeState()
        func scrape(_ body: (inout ScrapeWriter) -> Void) -> [String: Double] {
            var out = ScrapeWriter(registry: registry, previous: state)
            body(&out)
            state = out.finish()
            return Self.samples(registry.emitToString())
        }
        var m = scrape { out in
            out.counter("t_evictions_total", "Evictions.", 5)
            out.header("t_lag", "Lag.", "gauge")
            out.sample("t_lag", ["topic": "a", "partition": "0"], 7)
            out.sample("t_lag", ["topic": "a", "partition": "1"], 3)
        }
        #expect(m["t_evictions_total"] == 5)
        #expect(m["t_lag{partition=\"0\",topic=\"a\"}"] == 7)
        #expect(m["t_lag{partition=\"1\",topic=\"a\"}"] == 3)
        m = scrape { out in
            out.counter("t_evictions_total", "Evictions.", 9)
            out.header("t_lag", "Lag.", "gauge")
            out.sample("t_lag", ["topic": "a", "partition": "0"], 2)
        }
        #expect(m["t_evictions_total"] == 9)
        #expect(m["t_lag{partition=\"0\",topic=\"a\"}"] == 2)
        #expect(m["t_lag{partition=\"1\",topic=\"a\"}"] == nil, "a partition given away is no longer shown")
        // The source started over (a rebuilt pipeline): the counter resets, as Prometheus expects.
        m = scrape { out in out.counter("t_evictions_total", "Evictions.", 4) }
        #expect(m["t_evictions_total"] == 4)
        #expect(!m.keys.contains { $0.hasPrefix("t_lag") })
    }
}
