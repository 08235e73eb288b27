import ArgumentParser
import Dispatch
import Foundation
import Synchronization
import VigilCore
import VigilEngine
import VigilFeatures
import VigilSynthetic

/// Measures three ways of computing features keyed by the merchant while the workers own the
/// cards (docs/ARCHITECTURE.md, "Features keyed by another entity"), on the generated card
/// stream, wall time per event with the machine's two cores:
/// - `stage`: one keyed stage in front of the workers, on the ingest thread (what Vigil does);
/// - `two_hop`: the merchant's features on the worker owning the merchant, then the event on to
///   the card's worker: each batch split by merchant, both halves computed at once, joined;
/// - `striped`: state shared by the two card workers, one lock per stripe of merchants, each
///   worker taking its cards' events as they come.
/// It also counts the events whose striped features differ from the ordered stage's: the
/// interleaving of two threads decides them, so a replay cannot reproduce them.
@main
struct KeyedBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyed-bench", abstract: "ns/event of merchant-keyed features: front stage, two hops, striped.")

    @Option(help: "Events (generated card payments).") var events = 1_000_000
    @Option(help: "Events per batch.") var batch = 1024
    @Option(help: "Lock stripes of the striped variant.") var stripes = 64
    @Option(help: "Seed of the generated stream.") var seed: UInt64 = 3

    static let features = """
          - { name: merchant_count_1h, kind: window, key: merchant_id, window: 1h, agg: count }
          - { name: merchant_cards_1d, kind: window, key: merchant_id, window: 1d, agg: distinct, of: card_id }
          - { name: merchant_amount_mean_1d, kind: window, key: merchant_id, window: 1d, agg: mean, of: amount }
          - { name: mcc,
        """

    func run() throws {
        let text = try String(contentsOfFile: "topologies/card-payments.yaml", encoding: .utf8)
        let topology = try TopologyLoader.parse(text.replacingOccurrences(of: "  - { name: mcc,", with: Self.features))
        let keyed = try KeyedFeatures(
            features: topology.features, schema: topology.schema, sourceKey: topology.source.key,
            state: topology.state)
        let stagePlan = keyed.stages[0]
        var decoder = EventDecoder(source: topology.source, schema: topology.schema, layout: keyed.layout)
        var config = TransactionStream.Config()
        config.seed = seed
        config.events = events
        config.cards = 100_000
        var batches: [EventBatch] = []
        var current = EventBatch(layout: keyed.layout, capacity: batch)
        for t in TransactionStream(config) {
            let json = SyntheticEvents.json(t)
            _ = json.withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &current) }
            if current.count == batch {
                batches.append(current)
                current = EventBatch(layout: keyed.layout, capacity: batch)
            }
        }
        if current.count > 0 { batches.append(current) }
        let lateness = topology.source.time?.allowedLateness ?? .seconds(30)
        func extractor() -> FeatureExtractor {
            FeatureExtractor(
                plan: stagePlan.plan, allowedLateness: lateness, idleTTL: topology.state.idleTTL,
                maxEntities: 1_000_000)
        }
        let merchantColumn = stagePlan.keyColumn!
        let width = keyed.layout.categories.count
        @Sendable func merchant(_ b: EventBatch, _ i: Int) -> UInt64 { b.categories[i * width + merchantColumn] }

        // 1. One stage in front.
        let stage = KeyedFeatureStage(
            stagePlan, layout: keyed.layout, allowedLateness: lateness, idleTTL: topology.state.idleTTL,
            maxEntities: 1_000_000)
        var ordered = batches
        let t0 = ContinuousClock.now
        for k in ordered.indices { stage.apply(to: &ordered[k]) }
        let stageNs = Double(nanoseconds(ContinuousClock.now - t0)) / Double(events)

        // 2. Two hops: split by merchant, both shards at once, results written back in order.
        let router = ShardRouter(shards: 2)
        let hops = [extractor(), extractor()]
        nonisolated(unsafe) var hopped = batches
        let t1 = ContinuousClock.now
        for k in hopped.indices {
            let b = hopped[k]
            let keys = (0..<b.count).map { merchant(b, $0) }
            var parts = [(EventBatch, [Int], [UInt64])](
                repeating: (EventBatch(layout: keyed.layout), [], []), count: 2)
            for i in 0..<b.count {
                let s = router.shard(of: keys[i])
                parts[s].0.append(from: b, at: i)
                parts[s].1.append(i)
                parts[s].2.append(keys[i])
            }
            let results = Mutex([[Double]](repeating: [], count: 2))
            let split = parts
            DispatchQueue.concurrentPerform(iterations: 2) { s in
                var matrix = hops[s].makeMatrix()
                var outcomes: [FeatureExtractor.Outcome] = []
                hops[s].process(split[s].0, entityKeys: split[s].2, into: &matrix, outcomes: &outcomes)
                let values = matrix.values
                results.withLock { $0[s] = values }
            }
            let values = results.withLock { $0 }
            let n = stagePlan.outputs.count
            for s in 0..<2 {
                for (r, row) in parts[s].1.enumerated() {
                    for c in 0..<n { hopped[k].setNumber(row: row, column: stagePlan.outputs[c], values[s][r * n + c]) }
                }
            }
        }
        let twoHopNs = Double(nanoseconds(ContinuousClock.now - t1)) / Double(events)

        // 3. Striped shared state: the two card workers lock the merchant's stripe per event.
        let shared = (0..<stripes).map { _ in Stripe(extractor()) }
        let striped = Mutex([[Double]](repeating: [], count: batches.count))
        let cards = ShardRouter(shards: 2)
        let source = batches
        let stripeCount = stripes
        let n = stagePlan.outputs.count
        let t2 = ContinuousClock.now
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            var one = EventBatch(layout: keyed.layout, capacity: 1)
            var matrix = shared[0].extractor.makeMatrix()
            var outcomes: [FeatureExtractor.Outcome] = []
            var mine: [(Int, [Double])] = []
            for (k, b) in source.enumerated() {
                var out = [Double](repeating: .nan, count: b.count * n)
                for i in 0..<b.count where cards.shard(of: b.keys[i]) == worker {
                    let m = merchant(b, i)
                    let s = Int(m % UInt64(stripeCount))
                    one.removeAll()
                    one.append(from: b, at: i)
                    shared[s].lock.withLock { _ in
                        shared[s].extractor.process(one, entityKeys: [m], into: &matrix, outcomes: &outcomes)
                    }
                    for c in 0..<n { out[i * n + c] = matrix.values[c] }
                }
                mine.append((k, out))
            }
            striped.withLock { all in
                for (k, out) in mine {
                    if all[k].isEmpty {
                        all[k] = out
                    } else {
                        for j in out.indices where !out[j].isNaN { all[k][j] = out[j] }
                    }
                }
            }
        }
        let stripedNs = Double(nanoseconds(ContinuousClock.now - t2)) / Double(events)

        // How many events the striped variant gave other features than the ordered stage.
        var differ = 0
        var hopDiffer = 0
        let stripedValues = striped.withLock { $0 }
        for k in ordered.indices {
            for i in 0..<ordered[k].count {
                let row = i * keyed.layout.numbers.count
                var same = true
                var hopSame = true
                for c in 0..<n {
                    let a = ordered[k].numbers[row + stagePlan.outputs[c]]
                    let b = stripedValues[k][i * n + c]
                    let h = hopped[k].numbers[row + stagePlan.outputs[c]]
                    if !(a == b || (a.isNaN && b.isNaN)) { same = false }
                    if !(a == h || (a.isNaN && h.isNaN)) { hopSame = false }
                }
                if !same { differ += 1 }
                if !hopSame { hopDiffer += 1 }
            }
        }
        print(
            "merchants \(stage.extractor.entityCount), events \(events), batches of \(batch), \(stripes) stripes; "
                + "events whose features differ from the ordered stage: two hops \(hopDiffer), striped \(differ)")
        print(
            "RESULT stage_ns=\(String(format: "%.0f", stageNs)) two_hop_ns=\(String(format: "%.0f", twoHopNs)) "
                + "striped_ns=\(String(format: "%.0f", stripedNs)) striped_differ=\(differ) two_hop_differ=\(hopDiffer)"
        )
    }
}

/// One stripe of the shared merchant state and its lock.
final class Stripe: Sendable {
    let lock = Mutex(())
    let extractor: FeatureExtractor
    init(_ extractor: FeatureExtractor) { self.extractor = extractor }
}

func nanoseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e9 + Double(d.components.attoseconds) / 1e9
}
