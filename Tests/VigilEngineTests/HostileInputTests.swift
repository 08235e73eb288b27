import Foundation
import Testing
import VigilEngine
import VigilTestKit

/// Hostile input through the real broker: 100,000 malformed events of nineteen kinds (JSON nested
/// 10,000 deep, one byte over the size limit, invalid UTF-8, NaN, numbers beyond Double, control
/// characters, lone surrogates, …) spread through a labelled stream, beside events that are odd
/// but valid (exactly at the size limit, amounts near Double's largest, deep but allowed nesting).
/// Every malformed one must reach the dead-letter topic once, with its own reason; every valid one
/// is scored; the engine neither stops nor lets the odd values spoil its scores.
///
/// Its own broker: 220,000 records in and out would load the shared test broker that the other
/// integration suites' sessions depend on.
@Suite(.ownThread, .timeLimit(.minutes(15)))
struct HostileInputTests {
    /// A valid card payment with the given fields replaced (`nil` removes a field); `extra` goes in
    /// before the closing brace.
    static func payment(_ i: Int, _ replace: [String: String?] = [:], extra: String = "") -> String {
        var fields: [(String, String)] = [
            ("txn_id", "\"h\(i)\""), ("card_id", "\"hostile-\(i % 50)\""),
            ("ts", "1767225600\(String(format: "%03d", i % 1000))"),
            ("amount", "12.5"), ("merchant_id", "\"m\(i % 300)\""), ("merchant_category", "\"grocery\""),
            ("country", "\"DE\""), ("channel", "\"pos\""),
        ]
        for (name, value) in replace {
            if let at = fields.firstIndex(where: { $0.0 == name }) {
                if let value { fields[at].1 = value } else { fields.remove(at: at) }
            }
        }
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + extra + "}"
    }

    /// Malformed event `i`: kind `i % 16`, the sixteenth shared by four rarer kinds, and the reason it must be dead-lettered with. Each is
    /// unique (it carries `i`), except the empty records.
    static func malformed(_ i: Int, maxBytes: Int) -> ([UInt8], String) {
        let farFuture = Int64(Date().timeIntervalSince1970 * 1000) + 2 * 86_400_000
        switch i % 16 {
        case 0: return (Array("{\"txn_id\":\"h\(i)\",\"card_id\":".utf8), "malformed_json")
        case 1: return (Array("h\(i) is not JSON".utf8), "malformed_json")
        case 2: return (Array("{\"txn_id\":\"h\(i)\",}".utf8), "malformed_json")
        case 3:
            // Invalid UTF-8 (0xC3 0x28) inside a string that is not the key.
            var bytes = Array(payment(i, ["merchant_id": "\"mXX\(i)\""]).utf8)
            let at = bytes.firstRange(of: Array("XX".utf8))!.lowerBound
            bytes[at] = 0xC3
            bytes[at + 1] = 0x28
            return (bytes, "malformed_json")
        case 4: return (Array(payment(i, ["amount": "NaN"]).utf8), "malformed_json")
        case 5: return (Array(payment(i, ["amount": "-Infinity"]).utf8), "malformed_json")
        case 6: return (Array(payment(i, ["amount": "1e999"]).utf8), "malformed_json")
        case 7: return (Array(payment(i, ["merchant_id": "\"m\u{01}\(i)\""]).utf8), "malformed_json")
        case 8: return (Array(payment(i, ["card_id": "\"c\\ud800\(i)\""]).utf8), "malformed_json")
        case 9: return (Array(payment(i, ["amount": "\"lots\""]).utf8), "wrong_type")
        case 10: return (Array(payment(i, ["card_id": nil]).utf8), "missing_key")
        case 11: return (Array(payment(i, ["ts": nil]).utf8), "missing_time")
        case 12: return (Array(payment(i, ["ts": "\"yesterday \(i)\""]).utf8), "bad_time")
        case 13: return (Array(payment(i, ["amount": "-5"]).utf8), "out_of_range")
        case 14: return (Array("[\(i)]".utf8), "not_an_object")
        default:
            // The rarer and larger kinds take turns on this slot.
            switch (i / 16) % 50 {
            case 0:
                let depth = 10_000
                let deep = String(repeating: "[", count: depth) + String(repeating: "]", count: depth)
                return (Array(payment(i, extra: ",\"x\":\(deep)").utf8), "malformed_json")
            case 1:
                let event = payment(i, extra: ",\"pad\":\"\"")
                let pad = String(repeating: "x", count: maxBytes + 1 - event.utf8.count)
                return (Array(payment(i, extra: ",\"pad\":\"\(pad)\"").utf8), "oversized")
            case 2: return ([], "empty_event")
            default: return (Array(payment(i, ["ts": "\(farFuture)"]).utf8), "future_time")
            }
        }
    }

    /// Odd but valid event `i`: exactly at the size limit, an amount near Double's largest, or
    /// nesting that stays within the decoder's depth.
    static func oddButValid(_ i: Int, maxBytes: Int) -> [UInt8] {
        switch i % 3 {
        case 0:
            let event = payment(i, extra: ",\"pad\":\"\"")
            let pad = String(repeating: "y", count: maxBytes - event.utf8.count)
            return Array(payment(i, extra: ",\"pad\":\"\(pad)\"").utf8)
        case 1: return Array(payment(i, ["amount": "1.7976931348623157e308"]).utf8)
        default:
            let deep = String(repeating: "{\"a\":", count: 40) + "1" + String(repeating: "}", count: 40)
            return Array(payment(i, extra: ",\"x\":\(deep)").utf8)
        }
    }

    @Test func aHundredThousandMalformedEventsAreEachDeadLetteredWithTheirReason() throws {
        let broker = try PrivateBroker()
        defer { broker.stop() }
        let setup = try EngineIntegrationTests.Setup(partitions: 2, brokers: broker.address)
        let maxBytes = setup.topology.source.maxEventBytes
        let (valid, labels, cards) = EngineIntegrationTests.generated(20_000, seed: 41)
        let malformedCount = 100_000
        var oddCount = 0

        // The valid stream, with a malformed event after every fifth event and then in a run,
        // and the odd but valid ones among them.
        var events: [[UInt8]] = []
        var keys: [String] = []
        var expected: [[UInt8]: String] = [:]
        var expectedByReason: [String: Int] = [:]
        var nextMalformed = 0
        func addMalformed() {
            let (bytes, reason) = Self.malformed(nextMalformed, maxBytes: maxBytes)
            #expect(
                bytes.isEmpty || expected.updateValue(reason, forKey: bytes) == nil,
                "malformed \(nextMalformed) repeats")
            expectedByReason[reason, default: 0] += 1
            events.append(bytes)
            keys.append("hostile-\(nextMalformed % 97)")
            nextMalformed += 1
        }
        for (i, event) in valid.enumerated() {
            events.append(event)
            keys.append(cards[i])
            if i % 5 == 0 { addMalformed() }
            if i % 67 == 0 {
                events.append(Self.oddButValid(oddCount, maxBytes: maxBytes))
                keys.append("hostile-\(oddCount % 50)")
                oddCount += 1
            }
        }
        while nextMalformed < malformedCount { addMalformed() }
        #expect(expectedByReason.values.reduce(0, +) == malformedCount)
        #expect(Self.oddButValid(0, maxBytes: maxBytes).count == maxBytes)
        #expect(Self.malformed(16 * 1 + 15, maxBytes: maxBytes).0.count == maxBytes + 1)
        #expect(expectedByReason.count == 10, "every reason is exercised: \(expectedByReason)")

        try setup.produce(events, labels: labels, keys: keys)
        let (engine, _) = try setup.run(count: events.count, within: .seconds(600))
        let summary = engine.summary()

        // Nothing stopped the engine, every valid event was scored, every malformed one refused.
        #expect(summary.events == events.count)
        #expect(summary.scored == valid.count + oddCount, "scored \(summary.scored)")
        #expect(summary.deadLetterTotal == malformedCount, "dead letters \(summary.deadLetters)")
        let counted = Dictionary(uniqueKeysWithValues: summary.deadLetters.map { ($0.key.rawValue, $0.value) })
        #expect(counted == expectedByReason)
        #expect(engine.published.deadLetters == malformedCount)

        // The dead-letter topic, as another consumer reads it: each malformed event once, with its
        // reason, a detail and its source position.
        let dead = try setup.readAll(setup.deadLetters, count: malformedCount, within: .seconds(300))
        #expect(dead.count == malformedCount)
        var byReason: [String: Int] = [:]
        var wrong = 0
        var seen = Set<[UInt8]>()
        var repeated = 0
        for record in dead {
            let raw = record.value ?? []
            let header = { (name: String) in
                record.headers.first { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
            }
            let reason = header("vigil.reason") ?? "none"
            byReason[reason, default: 0] += 1
            if !raw.isEmpty {
                if expected[raw] != reason { wrong += 1 }
                if !seen.insert(raw).inserted { repeated += 1 }
            } else if reason != "empty_event" {
                wrong += 1
            }
            if header("vigil.detail")?.isEmpty != false || header("vigil.source.offset").flatMap({ Int64($0) }) == nil {
                wrong += 1
            }
        }
        #expect(wrong == 0, "\(wrong) dead letters with a wrong or missing reason, detail or offset")
        #expect(repeated == 0, "\(repeated) malformed events dead-lettered twice")
        #expect(byReason == expectedByReason)

        // The odd values spoiled nothing: every alert parses, its score and its models' scores are
        // numbers in [0, 1], and its features' values and contributions are numbers.
        let alerts = try setup.readAll(setup.alerts, count: summary.alerts)
        #expect(alerts.count == summary.alerts && summary.alerts > 0)
        var badAlerts = 0
        for a in alerts {
            let object = (try? JSONSerialization.jsonObject(with: Data(a.value ?? []))) as? [String: Any] ?? [:]
            let models = (object["models"] as? [String: [String: Any]]) ?? [:]
            let scores = [object["score"] as? Double] + models.values.map { $0["score"] as? Double }
            let features = (object["features"] as? [[String: Any]]) ?? []
            let numbers = features.flatMap { [$0["value"] as? Double, $0["contribution"] as? Double] }
            if models.isEmpty || scores.contains(where: { $0 == nil || !(0...1).contains($0!) })
                || numbers.contains(where: { $0 == nil || !$0!.isFinite })
            {
                badAlerts += 1
            }
        }
        #expect(
            badAlerts == 0,
            "\(badAlerts) of \(alerts.count) alerts unreadable or with a score or feature that is not a number")
        print(
            "[hostile] \(events.count) records: \(summary.scored) scored, \(summary.deadLetterTotal) dead-lettered \(counted.sorted { $0.key < $1.key }), \(dead.count) read back, \(summary.alerts) alerts"
        )
    }
}
