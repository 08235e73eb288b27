import ArgumentParser
import Foundation
import VigilCore
import VigilEngine
import VigilFeatures

#if canImport(Glibc)
    import Glibc
#endif

/// Measures the feature stage on one worker: hashing of keys and categorical values, window
/// update and feature extraction, over a generated card-payment stream.
@main
struct FeatureBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "feature-bench", abstract: "ns/event and bytes/entity of VigilFeatures on one worker.")

    @Option(help: "Topology whose features are computed.") var topology = "bench/topologies/features-8.yaml"
    @Option(help: "Active entities (each gets one event first, untimed).") var entities = 1_000_000
    @Option(help: "Timed events after the warm-up.") var events = 5_000_000
    @Option(help: "Events per batch.") var batch = 1024
    @Option(help: "Times the timed events are fed (each pass later in event time).") var passes = 1
    @Option(help: "Write the warm-up and the first --csv-events timed events here, for River.") var csv: String?
    @Option(help: "Timed events written to --csv.") var csvEvents = 200_000
    @Option(help: "Seed of the generated stream.") var seed: UInt64 = 42
    @Flag(help: "Only build batches (hash keys and values), without the feature stage.") var hashOnly = false

    func run() throws {
        let t = try TopologyLoader.load(path: topology)
        let layout = EventLayout(schema: t.schema)
        var state = t.state
        state.maxEntities = max(state.maxEntities, entities)
        let plan = try FeaturePlan(features: t.features, layout: layout, state: state)
        let lateness = t.source.time?.allowedLateness ?? .seconds(30)
        let extractor = FeatureExtractor(
            plan: plan, allowedLateness: lateness, idleTTL: state.idleTTL, maxEntities: state.maxEntities, seed: seed)
        var generator = StreamGenerator(schema: t.schema, key: t.source.key, entities: entities, seed: seed)

        // Pre-generate the timed stream as strings, so generation is not measured but hashing is.
        let warm = (0..<entities).map { generator.event(entity: $0) }
        let timed = (0..<events).map { _ in generator.event(entity: nil) }
        if let csv { try writeCSV(csv, warm + timed.prefix(csvEvents), schema: t.schema, key: t.source.key) }

        var matrix = extractor.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        var eventBatch = EventBatch(layout: layout, capacity: batch)
        // The stream as ingest sees it: raw bytes of keys and categorical values, hashed as they
        // are decoded, numbers already parsed.
        let warmBytes = FlatEvents(warm, layout: layout)
        let timedBytes = FlatEvents(timed, layout: layout)
        var buildNs: Int64 = 0
        func feed(_ events: FlatEvents, _ range: Range<Int>, timeOffset: Int64 = 0) -> Int64 {
            let t0 = ContinuousClock.now
            eventBatch.removeAll()
            events.fill(&eventBatch, range, timeOffset: timeOffset)
            let t1 = ContinuousClock.now
            buildNs += (t1 - t0).nanoseconds
            if !hashOnly { extractor.process(eventBatch, into: &matrix, outcomes: &outcomes) }
            return (ContinuousClock.now - t1).nanoseconds
        }
        let warmStart = ContinuousClock.now
        var i = 0
        while i < warm.count {
            _ = feed(warmBytes, i..<min(warm.count, i + batch))
            i += batch
        }
        let warmElapsed = ContinuousClock.now - warmStart

        var perBatch: [Double] = []
        perBatch.reserveCapacity(events / batch + 1)
        var checksum = 0.0
        var processNs: Int64 = 0
        buildNs = 0
        let span = (timed.last?.time ?? 0) - (warm.first?.time ?? 0) + 1000
        for pass in 0..<passes {
            i = 0
            while i < timed.count {
                let range = i..<min(timed.count, i + batch)
                let ns = feed(timedBytes, range, timeOffset: Int64(pass) * span)
                processNs += ns
                perBatch.append(Double(ns) / Double(range.count))
                if !hashOnly { checksum += matrix.values[0] }
                i += batch
            }
        }
        perBatch.sort()
        let ns = Double(processNs) / Double(events * passes)
        let bytes = Double(extractor.stateBytes) / Double(max(1, extractor.entityCount))
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let c = extractor.counters
        print(
            "features=\(plan.names.count + plan.categoryNames.count) entities=\(extractor.entityCount) events=\(events)"
                + " ns_per_event=\(fmt(ns)) events_per_s=\(Int(1e9 / max(ns, 0.001)))"
                + " ingest_hash_ns_per_event=\(fmt(Double(buildNs) / Double(events * passes)))"
                + " batch_ns_per_event_p50=\(fmt(perBatch[perBatch.count / 2])) p99=\(fmt(perBatch[perBatch.count * 99 / 100]))"
                + " warmup_ns_per_event=\(fmt(Double(warmElapsed.nanoseconds) / Double(entities)))"
                + " bytes_per_entity=\(fmt(bytes)) row_bytes=\(plan.bytesPerEntityRow)"
                + " peak_rss_mib=\(usage.ru_maxrss / 1024) late=\(c.lateScored) evicted=\(c.evictedIdle + c.evictedForCapacity)"
                + " huge_pages_mib=\(hugePagesMiB()) checksum=\(fmt(checksum))")
    }

    /// Transparent huge pages backing this process (Linux), to show whether the state got them.
    private func hugePagesMiB() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/smaps_rollup", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("AnonHugePages:") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
        }
        return 0
    }

    private func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

    private func writeCSV(_ path: String, _ rows: [GeneratedEvent], schema: Schema, key: String) throws {
        let layout = EventLayout(schema: schema)
        var out = "key,ts," + (layout.numbers + layout.categories).joined(separator: ",") + "\n"
        out.reserveCapacity(rows.count * 64)
        for e in rows {
            out += e.key + "," + String(e.time)
            for x in e.numbers { out += "," + String(x) }
            for s in e.categories { out += "," + s }
            out += "\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// Generated events flattened into byte buffers, as a decoder would find them in payloads.
struct FlatEvents {
    var keyBytes: [UInt8] = []
    var keyEnds: [Int] = []
    var times: [Int64] = []
    var numbers: [Double] = []
    var categoryBytes: [UInt8] = []
    var categoryEnds: [Int] = []
    let numberCount: Int
    let categoryCount: Int

    init(_ events: [GeneratedEvent], layout: EventLayout) {
        numberCount = layout.numbers.count
        categoryCount = layout.categories.count
        for e in events {
            keyBytes += Array(e.key.utf8)
            keyEnds.append(keyBytes.count)
            times.append(e.time)
            numbers += e.numbers
            for c in e.categories {
                categoryBytes += Array(c.utf8)
                categoryEnds.append(categoryBytes.count)
            }
        }
    }

    /// Appends events `range` to `batch`, hashing their keys and categorical values.
    func fill(_ batch: inout EventBatch, _ range: Range<Int>, timeOffset: Int64 = 0) {
        keyBytes.withUnsafeBytes { keys in
            categoryBytes.withUnsafeBytes { cats in
                for i in range {
                    let keyStart = i == 0 ? 0 : keyEnds[i - 1]
                    let key = StableHash.hash(UnsafeRawBufferPointer(rebasing: keys[keyStart..<keyEnds[i]]))
                    batch.appendEvent(key: key, time: times[i] + timeOffset)
                    for c in 0..<numberCount { batch.setNumber(c, numbers[i * numberCount + c]) }
                    for c in 0..<categoryCount {
                        let k = i * categoryCount + c
                        let start = k == 0 ? 0 : categoryEnds[k - 1]
                        var h = StableHash.hash(UnsafeRawBufferPointer(rebasing: cats[start..<categoryEnds[k]]))
                        if h == 0 { h = 1 }
                        batch.setCategory(c, h)
                    }
                }
            }
        }
    }
}

struct GeneratedEvent {
    var key: String
    var time: Int64
    var numbers: [Double]
    var categories: [String]
}

/// A card-payment-like stream for any schema: amounts log-normal, each card mostly in its home
/// country with a few merchants, event times 10 ms apart with up to 1 s of disorder.
struct StreamGenerator {
    let layout: EventLayout
    let key: String
    let entities: Int
    var state: UInt64
    var time: Int64 = 1_700_000_000_000

    init(schema: Schema, key: String, entities: Int, seed: UInt64) {
        layout = EventLayout(schema: schema)
        self.key = key
        self.entities = entities
        state = seed | 1
    }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }

    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func event(entity: Int?) -> GeneratedEvent {
        let card = entity ?? Int(next() % UInt64(entities))
        time += 10
        let jitter = Int64(next() % 1000)
        let numbers = layout.numbers.map { _ in
            // Log-normal amounts around 40, heavy right tail.
            (exp(3.7 + 1.1 * gaussian()) * 100).rounded() / 100
        }
        let categories = layout.categories.map { name -> String in
            if name == key { return "card-\(card)" }
            let r = next()
            switch name {
            case "country": return r % 20 == 0 ? "c\(r % 40)" : "c\(card % 40)"  // 95% home country
            case "merchant_id": return r % 4 == 0 ? "m\(r % 20_000)" : "m\((card &* 31 &+ Int(r % 5)) % 20_000)"
            default: return "v\(r % 50)"
            }
        }
        return GeneratedEvent(key: "card-\(card)", time: time - jitter, numbers: numbers, categories: categories)
    }

    mutating func gaussian() -> Double {
        let u = max(uniform(), 1e-300)
        let v = uniform()
        return (-2 * log(u)).squareRoot() * cos(2 * .pi * v)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, atto) = components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
