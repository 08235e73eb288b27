import Foundation

/// Which part of an event's local time a `kind: calendar` feature gives. Key `part`.
///
/// Fraud keeps office hours of its own (card testing at night, takeovers at weekends), and a
/// linear model reads an hour best as a point on a circle: `hour_sin` and `hour_cos` together
/// put 23:59 next to 00:00.
public enum CalendarPart: String, Sendable, Hashable, CaseIterable {
    /// Hours since local midnight, with minutes as a fraction (0 ..< 24).
    case hour
    /// Days since local Monday 00:00, with the time of day as a fraction (0 ..< 7).
    case weekday
    /// sin and cos of the time of day as an angle (one turn a day).
    case hourSin = "hour_sin"
    case hourCos = "hour_cos"
    /// sin and cos of the time of week as an angle (one turn a week).
    case weekdaySin = "weekday_sin"
    case weekdayCos = "weekday_cos"

    /// The value for `localMs`, milliseconds since 1970-01-01 00:00 local time.
    @inline(__always)
    func value(localMs: Int64) -> Double {
        let dayMs: Int64 = 86_400_000
        let days = localMs >= 0 ? localMs / dayMs : (localMs + 1) / dayMs - 1  // floor
        let ofDay = Double(localMs - days * dayMs) / Double(dayMs)  // 0 ..< 1
        // 1970-01-01 was a Thursday: Monday is 0.
        let weekday = Double(((days + 3) % 7 + 7) % 7)
        switch self {
        case .hour: return ofDay * 24
        case .weekday: return weekday + ofDay
        case .hourSin: return sin(2 * .pi * ofDay)
        case .hourCos: return cos(2 * .pi * ofDay)
        case .weekdaySin: return sin(2 * .pi * (weekday + ofDay) / 7)
        case .weekdayCos: return cos(2 * .pi * (weekday + ofDay) / 7)
        }
    }
}

/// A time zone's offsets from UTC as a table of transitions, built once from the system's zone
/// data (Foundation) when the plan is compiled, so the hot path looks an offset up without
/// calling into Foundation.
struct ZoneTable: Sendable, Hashable {
    let identifier: String
    /// Instants (ms since the epoch) at which the offset changes, ascending.
    let transitions: [Int64]
    /// Offset in ms before the first transition, then after each one (`transitions.count + 1`).
    let offsets: [Int64]

    /// The years the table covers; outside them the nearest offset holds.
    static let covered = (from: 1970, to: 2100)

    /// The table of zone `identifier`; nil for a name the system does not know.
    init?(_ identifier: String) {
        guard let zone = TimeZone(identifier: identifier) else { return nil }
        self.identifier = identifier
        var transitions: [Int64] = []
        var offsets: [Int64] = []
        let start = Date(timeIntervalSince1970: 0)
        let end = Date(timeIntervalSince1970: Double(Self.covered.to - 1970) * 365.2425 * 86_400)
        offsets.append(Int64(zone.secondsFromGMT(for: start)) * 1000)
        var at = start
        while let next = zone.nextDaylightSavingTimeTransition(after: at), next < end {
            let offset = Int64(zone.secondsFromGMT(for: next)) * 1000
            if offset != offsets.last {
                transitions.append(Int64((next.timeIntervalSince1970 * 1000).rounded()))
                offsets.append(offset)
            }
            at = next
        }
        self.transitions = transitions
        self.offsets = offsets
    }

    /// The offset from UTC at `utcMs`.
    @inline(__always)
    func offset(at utcMs: Int64) -> Int64 {
        if transitions.isEmpty { return offsets[0] }
        // The number of transitions at or before utcMs.
        var lo = 0
        var hi = transitions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if transitions[mid] <= utcMs { lo = mid + 1 } else { hi = mid }
        }
        return offsets[lo]
    }
}
