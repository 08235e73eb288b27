import Foundation
import Testing
import VigilCore
import VigilTestKit

@testable import VigilFeatures

@Suite(.ownThread) struct ShardedFeaturesTests {
    /// Ingest splits batches by entity and hands the parts over one ring per worker; two worker
    /// threads, each with its own extractor, compute exactly the features one extractor computes
    /// for the whole stream, because each entity's events all reach one worker, in order.
    @Test(.timeLimit(.minutes(10))) func workersOnRingsComputeWhatOneExtractorComputes() async throws {
        let words: [UInt64] = (0..<30_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 ^ 0x5555 }
        // Many entities, so both workers get some: keys from the word, not the three test cards.
        let events = TestEvent.stream(words, maxDelay: 20_000, maxGap: 5_000)
        func batches() -> [EventBatch] {
            stride(from: 0, to: events.count, by: 500).map { start in
                var batch = EventBatch(layout: TestTopology.layout)
                for e in events[start..<min(events.count, start + 500)] {
                    let key = StableHash.hash("card-\(e.id % 257)")
                    batch.append(
                        key: key, time: e.time, numbers: [e.amount],
                        categories: [key, StableHash.category("m\(e.merchant)"), StableHash.category("c\(e.country)")])
                }
                return batch
            }
        }

        // One extractor, the whole stream.
        let single = try TestTopology.extractor(lateness: .seconds(60), reorder: 2)
        var expected: [[Double]] = []
        var matrix = single.makeMatrix()
        var outcomes: [FeatureExtractor.Outcome] = []
        for batch in batches() {
            single.process(batch, into: &matrix, outcomes: &outcomes)
            for r in 0..<batch.count { expected.append(Array(matrix.row(r))) }
        }

        // Two workers behind rings.
        let router = ShardRouter(shards: 2)
        let rings = (0..<2).map { _ in ShardRing<(batch: EventBatch, positions: [Int], base: Int)>(capacity: 4) }
        final class Results: @unchecked Sendable {  // each worker writes only its own slot; read after both finish
            var rows: [[Int: [Double]]] = [[:], [:]]
            var entities = [0, 0]
        }
        let results = Results()
        let done = DispatchSemaphore(value: 0)
        for w in 0..<2 {
            let extractor = try TestTopology.extractor(lateness: .seconds(60), reorder: 2)
            let ring = rings[w]
            Thread {
                var matrix = extractor.makeMatrix()
                var outcomes: [FeatureExtractor.Outcome] = []
                while let part = ring.pop() {
                    extractor.process(part.batch, into: &matrix, outcomes: &outcomes)
                    for (r, p) in part.positions.enumerated() { results.rows[w][part.base + p] = Array(matrix.row(r)) }
                }
                results.entities[w] = extractor.entityCount
                done.signal()
            }.start()
        }
        var base = 0
        for batch in batches() {
            for (w, part) in router.split(batch).enumerated() where part.batch.count > 0 {
                rings[w].push((part.batch, part.positions, base))
            }
            base += batch.count
        }
        for ring in rings { ring.close() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                done.wait()
                c.resume()
            }
        }
        #expect(results.entities[0] > 0 && results.entities[1] > 0)
        #expect(results.entities[0] + results.entities[1] == single.entityCount)
        #expect(results.rows[0].count + results.rows[1].count == expected.count)
        for (i, row) in expected.enumerated() {
            let got = results.rows[0][i] ?? results.rows[1][i]
            #expect(got.map { $0.map(\.bitPattern) } == row.map(\.bitPattern), "event \(i)")
        }
    }
}
