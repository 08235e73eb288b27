import VigilCore
import VigilModels

/// Writes alert records as JSON (the schema of docs/alerts.md) straight into bytes: field order
/// fixed, numbers in their shortest round-trip form, so equal alerts are equal bytes.
struct AlertWriter: Sendable {
    let topology: String
    /// The topology file's `configHash`, written as `topology_hash` when known (reloadable).
    var topologyHash: String?
    let names: [String]
    let versions: [String]
    var roles: [ModelSpec.Role]
    /// Top features per alert (`alerts.explain`, live-reloadable).
    var explain: Int

    /// The deterministic id of the alert raised by the record at `position`: the same record
    /// scored by the same model versions always gets the same id, so a consumer can drop the
    /// duplicates an at-least-once restart may publish.
    static func alertID(_ position: SourcePosition, versions: [String]) -> String {
        var text = position.topic
        text += "\u{0}\(position.partition)\u{0}\(position.offset)\u{0}"
        text += versions.joined(separator: ",")
        return StableHash.hex(StableHash.hash(text))
    }

    func write(
        chunk: InputChunk, index i: Int, worker: Int, contributions: [Contribution], arm: String? = nil
    ) -> AlertRecord {
        let position = chunk.position(i)
        let id = Self.alertID(position, versions: versions)
        var out: [UInt8] = []
        out.reserveCapacity(640)
        out += #"{"alert_id":""#.utf8
        out += id.utf8
        out += #"","topology":"#.utf8
        JSONText.string(topology, into: &out)
        if let topologyHash {
            out += #","topology_hash":""#.utf8
            out += topologyHash.utf8
            out.append(0x22)
        }
        out += #","event_id":"#.utf8
        chunk.appendIDJSON(i, to: &out)
        out += #","entity":""#.utf8
        chunk.appendText(chunk.keyRanges[i], to: &out)
        out += #"","event_time":""#.utf8
        out += JSONText.rfc3339(milliseconds: chunk.times[i]).utf8
        out += #"","score":"#.utf8
        JSONText.number(chunk.scores[i], into: &out)
        out += #","threshold":"#.utf8
        JSONText.number(chunk.thresholds[i], into: &out)
        if let arm {
            out += #","arm":"#.utf8
            JSONText.string(arm, into: &out)
        }
        out += #","models":{"#.utf8
        for m in names.indices {
            if m > 0 { out.append(0x2C) }
            JSONText.string(names[m], into: &out)
            out += #":{"score":"#.utf8
            JSONText.number(chunk.modelScore(i, m), into: &out)
            out += #","version":"#.utf8
            JSONText.string(versions[m], into: &out)
            out += #","role":"#.utf8
            JSONText.string(roles[m].rawValue, into: &out)
            out.append(0x7D)
        }
        out += #"},"features":["#.utf8
        for (k, c) in contributions.enumerated() {
            if k > 0 { out.append(0x2C) }
            out += #"{"name":"#.utf8
            JSONText.string(c.feature, into: &out)
            out += #","value":"#.utf8
            JSONText.number(c.value, into: &out)
            out += #","contribution":"#.utf8
            JSONText.number(c.weight, into: &out)
            out.append(0x7D)
        }
        out += #"],"source":{"topic":"#.utf8
        JSONText.string(position.topic, into: &out)
        out += #","partition":\#(position.partition),"offset":\#(position.offset),"timestamp_ms":"#.utf8
        out += (position.timestampMs.map(String.init) ?? "null").utf8
        out += #"},"worker":\#(worker)}"#.utf8
        return AlertRecord(index: i, id: id, json: out)
    }
}

/// Small JSON writing helpers shared by alerts, score lines and dead-letter records.
enum JSONText {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string literal of `s`, escaped.
    static func string(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x0A: out += [0x5C, 0x6E]
            case 0x0D: out += [0x5C, 0x72]
            case 0x09: out += [0x5C, 0x74]
            case 0..<0x20:
                out += "\\u00".utf8
                out += [hexDigits[Int(b >> 4)], hexDigits[Int(b & 15)]]
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    /// A number in its shortest round-trip form; NaN and infinities as null.
    static func number(_ v: Double, into out: inout [UInt8]) {
        guard v.isFinite else {
            out += "null".utf8
            return
        }
        if v == v.rounded(), abs(v) < 1e15 {
            out += String(Int64(v)).utf8
        } else {
            out += v.description.utf8
        }
    }

    /// `2026-01-01T00:00:00.123Z`.
    static func rfc3339(milliseconds ms: Int64) -> String {
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let millis = Int(ms - seconds * 1000)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secs = Int(seconds - days * 86_400)
        let (y, m, d) = civil(fromDays: Int(days))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(y)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)).\(msText)Z"
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
    static func civil(fromDays z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}
