import ServiceLifecycle
import VigilEngine

/// `vigil run`'s progress line: events, alerts and dead letters with their rates over the last
/// second, and the consumer lag, drawn on a ``TerminalLine`` until the group shuts down.
struct RunProgress: Service {
    let engine: KafkaEngine
    let line: TerminalLine
    var every: Duration = .seconds(1)

    func run() async throws {
        var meter = RateMeter(counts)
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: every) }
            } catch {
                break
            }
            line.show(text(meter.rates(counts)))
        }
        line.clear()
    }

    private var counts: [Int] {
        let s = engine.stats
        return [s.eventsRead, s.alertsRaised, s.deadLetterCount]
    }

    private func text(_ rates: [Double]) -> String {
        let c = counts
        let lag = engine.consumerLag.values.reduce(0, +)
        let ready = engine.isReady ? "" : " (not ready)"
        return "run: \(grouped(c[0])) events (\(grouped(Int(rates[0].rounded())))/s), \(grouped(c[1])) alerts "
            + "(\(grouped(Int(rates[1].rounded())))/s), \(grouped(c[2])) dead letters, lag \(grouped(Int(lag)))\(ready)"
    }
}
