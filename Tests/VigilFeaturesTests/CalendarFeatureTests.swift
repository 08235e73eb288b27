import Foundation
import Testing
import VigilCore
import VigilTestKit

@testable import VigilFeatures

/// `kind: calendar`: hour of day and day of week in UTC or a named zone, plain and cyclic,
/// checked against Foundation's calendar and across a daylight-saving change.
@Suite struct CalendarFeatureTests {
    static let layout = EventLayout(numbers: [], categories: ["card_id"])

    /// Each part's value for events at `times` (ms since the epoch), in zone `zone`.
    static func values(_ part: CalendarPart, zone: String, at times: [Int64]) throws -> [Double] {
        let plan = try FeaturePlan(
            features: [FeatureSpec(name: "c", kind: .calendar(part: part, timeZone: zone))], layout: layout)
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: .seconds(1), idleTTL: .seconds(86_400), maxEntities: 1000)
        var batch = EventBatch(layout: layout)
        // One entity per event: times in any order are all on time.
        for (i, t) in times.enumerated() {
            let key = StableHash.hash("k\(i)")
            batch.append(key: key, time: t, numbers: [], categories: [key])
        }
        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        extractor.process(batch, into: &matrix, outcomes: &outcomes)
        return (0..<times.count).map { matrix.value(row: $0, "c")! }
    }

    static func ms(_ text: String) -> Int64 {
        Int64(ISO8601DateFormatter().date(from: text)!.timeIntervalSince1970 * 1000)
    }

    @Test func hoursAndWeekdaysInUTCAndInAZoneWithSummerTime() throws {
        // 2026-01-01 was a Thursday (3, Monday being 0).
        let utc = [Self.ms("2026-01-01T00:00:00Z"), Self.ms("2026-01-05T13:30:00Z"), Self.ms("1969-12-31T23:00:00Z")]
        #expect(try Self.values(.hour, zone: "UTC", at: utc) == [0, 13.5, 23])
        #expect(try Self.values(.weekday, zone: "UTC", at: utc) == [3, 13.5 / 24, 2 + 23.0 / 24])
        // Berlin: +2 in summer, so 22:30Z on Wednesday 1 July is 00:30 on Thursday.
        let summer = [Self.ms("2026-07-01T22:30:00Z")]
        #expect(try Self.values(.hour, zone: "Europe/Berlin", at: summer) == [0.5])
        #expect(try Self.values(.weekday, zone: "Europe/Berlin", at: summer) == [3 + 0.5 / 24])
        // The spring change on 29 March 2026 at 01:00Z: 01:59:59 local, then 03:00.
        let change = [Self.ms("2026-03-29T00:59:59Z"), Self.ms("2026-03-29T01:00:00Z")]
        let hours = try Self.values(.hour, zone: "Europe/Berlin", at: change)
        #expect(abs(hours[0] - (2 - 1.0 / 3600)) < 1e-9 && hours[1] == 3)
    }

    @Test func cyclicPartsPutMidnightNextToTheDayBefore() throws {
        let times = [Self.ms("2026-01-04T23:59:00Z"), Self.ms("2026-01-05T00:00:00Z"), Self.ms("2026-01-05T06:00:00Z")]
        let s = try Self.values(.hourSin, zone: "UTC", at: times)
        let c = try Self.values(.hourCos, zone: "UTC", at: times)
        #expect(abs(s[0] - s[1]) < 0.01 && abs(c[0] - c[1]) < 0.01)
        #expect(abs(s[2] - 1) < 1e-12 && abs(c[2]) < 1e-12)
        // Sunday 23:59 and Monday 00:00 are a minute apart on the week's circle too.
        let ws = try Self.values(.weekdaySin, zone: "UTC", at: times)
        let wc = try Self.values(.weekdayCos, zone: "UTC", at: times)
        #expect(hypot(ws[0] - ws[1], wc[0] - wc[1]) < 2 * .pi / 7 / 1000)
    }

    @Test(arguments: ["UTC", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"])
    func everyHourAndWeekdayEqualsFoundationsCalendar(zone: String) throws {
        var random = SeededRandom(seed: 11)
        // 1971 to 2099, whole seconds.
        let times = (0..<2000).map { _ in Int64(random.next() % 4_065_000_000 + 31_536_000) * 1000 }
        let hours = try Self.values(.hour, zone: zone, at: times)
        let weekdays = try Self.values(.weekday, zone: zone, at: times)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: zone)!
        for (k, t) in times.enumerated() {
            let c = calendar.dateComponents(
                [.hour, .minute, .second, .weekday], from: Date(timeIntervalSince1970: Double(t) / 1000))
            let hour = Double(c.hour!) + Double(c.minute!) / 60 + Double(c.second!) / 3600
            // Foundation: Sunday is 1; here Monday is 0.
            let weekday = Double((c.weekday! + 5) % 7)
            #expect(abs(hours[k] - hour) < 1e-9, "\(zone) at \(t)")
            #expect(abs(weekdays[k] - (weekday + hour / 24)) < 1e-9, "\(zone) at \(t)")
        }
    }

    @Test func anUnknownZoneOrPartIsRefusedWithTheKeyNamed() {
        let schema = Schema(fields: [FieldSpec(name: "card_id", type: .string)])
        func issues(_ node: ConfigNode) -> [String] {
            let d = ConfigDiagnostics()
            _ = FeatureSpec.decodeList([(node, ConfigPath.root.key("features").index(0))], schema: schema, d)
            return d.issues.map(\.description)
        }
        #expect(issues(["name": "h", "kind": "calendar", "part": "hour_sin", "timezone": "Europe/Berlin"]) == [])
        #expect(issues(["name": "h", "kind": "calendar", "part": "hour"]) == [])
        let zone = issues(["name": "h", "kind": "calendar", "part": "hour", "timezone": "Mars/Olympus"])
        #expect(zone.count == 1 && zone[0].contains("timezone") && zone[0].contains("Mars/Olympus"))
        let part = issues(["name": "h", "kind": "calendar", "part": "minute"])
        #expect(part.count == 1 && part[0].contains("part"))
    }
}

/// `kind: ratio` with `raw: true`: a transformed value operand is divided in its field's units.
@Suite struct RawRatioTests {
    @Test func aRawRatioDividesTheAmountByTheMeanAmountNotItsLogarithm() throws {
        let layout = EventLayout(numbers: ["amount"], categories: ["card"])
        let amount = FeatureSpec(
            name: "amount", kind: .value(field: "amount", transform: ValueTransform(log1p: true)))
        let mean = FeatureSpec(
            name: "mean_1d", kind: .window(key: "card", length: .seconds(86_400), aggregate: .mean, of: "amount"))
        func ratios(raw: Bool) throws -> [Double] {
            let plan = try FeaturePlan(
                features: [
                    amount, mean, .init(name: "r", kind: .ratio(numerator: "amount", denominator: "mean_1d", raw: raw)),
                ],
                layout: layout)
            let extractor = FeatureExtractor(
                plan: plan, allowedLateness: .seconds(1), idleTTL: .seconds(86_400), maxEntities: 10)
            var batch = EventBatch(layout: layout)
            let key = StableHash.hash("card")
            for (i, a) in [10.0, 30.0].enumerated() {
                batch.append(key: key, time: 1_767_225_600_000 + Int64(i) * 1000, numbers: [a], categories: [key])
            }
            var matrix = extractor.makeMatrix()
            var outcomes: [FeatureExtractor.Outcome] = []
            extractor.process(batch, into: &matrix, outcomes: &outcomes)
            return (0..<2).map { matrix.value(row: $0, "r")! }
        }
        // The day's mean includes the event: 10, then (10 + 30) / 2 = 20.
        #expect(try ratios(raw: true) == [1, 1.5])
        #expect(try ratios(raw: false) == [log1p(10) / 10, log1p(30) / 20])
        // `raw` is part of the plan's meaning: a checkpoint of the other form is not restored.
        let a = try FeaturePlan(
            features: [
                amount, mean, .init(name: "r", kind: .ratio(numerator: "amount", denominator: "mean_1d", raw: true)),
            ],
            layout: layout)
        let b = try FeaturePlan(
            features: [amount, mean, .init(name: "r", kind: .ratio(numerator: "amount", denominator: "mean_1d"))],
            layout: layout)
        #expect(a.signature != b.signature)
    }
}
