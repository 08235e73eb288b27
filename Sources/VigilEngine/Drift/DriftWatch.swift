import VigilCore
import VigilFeatures
import VigilModels

/// One worker's drift detectors (`drift:`): Page-Hinkley on its final scores, and the PSI of
/// each numeric feature between a reference window (taken after the warm-up) and the most
/// recent window, checked once per window. After a feature detection the recent data becomes
/// the new reference, so one shift is reported once.
///
/// Owned by its worker; touched on the worker's thread only.
struct DriftWatch: Sendable {
    let spec: DriftSpec
    let featureNames: [String]
    /// Their columns in the worker's matrix.
    let columns: [Int]
    let width: Int
    private var scores: PageHinkley
    private var features: FeatureDrift
    private var seen = 0
    private var sinceCheck = 0
    /// Event time of the first event of the current PSI window.
    private var windowStart: Int64 = 0
    /// Recent event times of scored events, to date a Page-Hinkley onset.
    private var times: [Int64]
    private var timesNext = 0
    private var row: [Double]
    /// Recent final scores' mean (exponential, over about 500 events).
    private var recentMean = 0.0
    static let timeRing = 1 << 16

    /// One detection.
    struct Finding: Sendable {
        var detector: String
        var subject: String
        var value: Double
        var reference: Double
        var direction: String?
        var since: Int64
        var at: Int64
    }

    /// - Parameters:
    ///   - names: the matrix's numeric columns.
    ///   - watched: the features to watch among them.
    init(spec: DriftSpec, names: [String], watched: [String]) {
        self.spec = spec
        let featureNames = names.filter { watched.contains($0) }
        self.featureNames = featureNames
        columns = featureNames.compactMap { names.firstIndex(of: $0) }
        width = names.count
        scores = PageHinkley(delta: spec.scoreDelta, lambda: spec.scoreLambda, minimumValues: 1000)
        features = FeatureDrift(
            features: featureNames.count, referenceSize: spec.windowEvents, window: spec.windowEvents)
        times = Array(repeating: 0, count: Self.timeRing)
        row = Array(repeating: .nan, count: featureNames.count)
    }

    /// Observes one scored event: its final score (nil before any model is ready) and its
    /// feature row `r` of `matrix`, at event time `time`.
    mutating func observe(final: Double?, matrix: FeatureMatrix, row r: Int, time: Int64) -> [Finding] {
        seen += 1
        guard seen > spec.warmupEvents else { return [] }
        var found: [Finding] = []
        times[timesNext] = time
        timesNext = (timesNext + 1) % Self.timeRing
        if let final {
            recentMean += (final - recentMean) / 500
            if let change = scores.add(final) {
                let ago = min(scores.lastOnsetAgo, Self.timeRing - 1)
                let since = times[(timesNext - 1 - ago + Self.timeRing) % Self.timeRing]
                found.append(
                    Finding(
                        detector: "page_hinkley", subject: "score", value: recentMean, reference: scores.lastMean,
                        direction: change == .increase ? "increase" : "decrease", since: since, at: time))
            }
        }
        let (columns, width) = (self.columns, self.width)
        matrix.values.withUnsafeBufferPointer { v in
            for (j, c) in columns.enumerated() { row[j] = v[r * width + c] }
        }
        if sinceCheck == 0 { windowStart = time }
        features.add(row)
        sinceCheck += 1
        if sinceCheck >= spec.windowEvents {
            sinceCheck = 0
            if let psi = features.psi() {
                let shifted = psi.indices.filter { psi[$0] > spec.psiThreshold }
                for c in shifted {
                    found.append(
                        Finding(
                            detector: "psi", subject: featureNames[c], value: psi[c], reference: spec.psiThreshold,
                            direction: nil, since: windowStart, at: time))
                }
                if !shifted.isEmpty {
                    // The shifted data is the new normal: the next window starts a new reference.
                    features = FeatureDrift(
                        features: columns.count, referenceSize: spec.windowEvents, window: spec.windowEvents)
                }
            }
        }
        return found
    }

    /// The drift record (docs/alerts.md, "Drift records").
    static func record(
        _ f: Finding, topology: String, worker: Int, action: DriftSpec.Action, models: [String]
    ) -> [UInt8] {
        var out: [UInt8] = []
        out += #"{"kind":"drift","topology":"#.utf8
        JSONText.string(topology, into: &out)
        out += #","detector":"#.utf8
        JSONText.string(f.detector, into: &out)
        out += #","subject":"#.utf8
        JSONText.string(f.subject, into: &out)
        out += #","value":"#.utf8
        JSONText.number(f.value, into: &out)
        out += #","reference":"#.utf8
        JSONText.number(f.reference, into: &out)
        if let d = f.direction {
            out += #","direction":"#.utf8
            JSONText.string(d, into: &out)
        }
        out += #","since":""#.utf8
        out += JSONText.rfc3339(milliseconds: f.since).utf8
        out += #"","detected_at":""#.utf8
        out += JSONText.rfc3339(milliseconds: f.at).utf8
        out += #"","worker":\#(worker),"action":"#.utf8
        JSONText.string(action.rawValue, into: &out)
        out += #","models":["#.utf8
        for (i, m) in models.enumerated() {
            if i > 0 { out.append(0x2C) }
            JSONText.string(m, into: &out)
        }
        out += "]}".utf8
        return out
    }
}
