/// Durations as topology files write them: a whole number and a unit (`500ms`, `30s`, `10m`, `1h`, `1d`).
public enum DurationText {
    /// The units accepted, longest suffix first so `ms` wins over `s`.
    static let units: [(suffix: String, seconds: Int64, attoseconds: Int64)] = [
        ("ms", 0, 1_000_000_000_000_000),
        ("s", 1, 0), ("m", 60, 0), ("h", 3_600, 0), ("d", 86_400, 0), ("w", 604_800, 0),
    ]

    /// The hint printed next to every bad duration.
    public static let hint = "use a whole number and a unit, such as 500ms, 30s, 10m, 1h or 1d"

    /// Parses `10m` into ten minutes; nil for anything else (`10`, `10 min`, `-5s`, `1.5h`).
    public static func parse(_ text: String) -> Duration? {
        for unit in units where text.hasSuffix(unit.suffix) {
            let digits = text.dropLast(unit.suffix.count)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int64(digits), n >= 0 else { return nil }
            if unit.suffix == "ms" { return .milliseconds(n) }
            let (seconds, overflow) = n.multipliedReportingOverflow(by: unit.seconds)
            return overflow ? nil : .seconds(seconds)
        }
        return nil
    }

    /// The shortest exact text for a duration: `90s` stays `90s`, `3600s` becomes `1h`.
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if attoseconds != 0 || seconds == 0 {
            let ms = seconds * 1000 + attoseconds / 1_000_000_000_000_000
            return "\(ms)ms"
        }
        for unit in units.reversed() where unit.seconds > 0 && seconds % unit.seconds == 0 {
            return "\(seconds / unit.seconds)\(unit.suffix)"
        }
        return "\(seconds)s"
    }
}

extension Duration {
    /// Whole milliseconds (truncated): the unit of event time throughout Vigil.
    public var wholeMilliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }

    /// In seconds, with the fraction: for rates, timings and logs.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
