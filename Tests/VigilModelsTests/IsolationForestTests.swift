import Testing
import VigilCore
import VigilTestKit

@testable import VigilModels

@Suite(.ownThread) struct IsolationForestTests {
    static let features = [
        "amount", "count_10m", "sum_1h", "amount_z", "merchants_1h", "new_country", "new_merchant",
        "since_last", "amount_vs_day",
    ]

    static func make(_ seed: UInt64) -> IsolationForest {
        IsolationForest(features: features, spec: IsolationForestSpec(trees: 100, sample: 256), seed: seed)
    }

    @Test func passesTheConformanceSuite() {
        ModelConformance.check(Self.make, minimumAUC: 0.8)
    }

    /// The second variant, kept for comparison (docs/models.md).
    @Test func countingForestPassesTheConformanceSuite() {
        ModelConformance.check(
            {
                CountingIsolationForest(
                    features: Self.features, spec: IsolationForestSpec(trees: 100, sample: 256), seed: $0)
            },
            minimumAUC: 0.7)
    }

    /// The worker scores spans of rows in one batch and needs each score to equal the one-row
    /// score bit for bit (replay equals run whatever the batching): spans shorter and longer than
    /// the lane groups, and a forest restored from its checkpoint.
    @Test func batchScoresEqualOneRowScoresBitForBit() throws {
        let data = ModelFixture.shared
        var forest = Self.make(3)
        _ = ModelConformance.prequential(&forest, data, rows: 0..<5_000)
        var writer = BinaryWriter()
        forest.encode(into: &writer)
        var reader = BinaryReader(writer.bytes)
        let restored = try IsolationForest(decoding: &reader)
        let binding = forest.binding(for: data.matrix)
        for model in [forest, restored] {
            var start = 5_000
            for length in [1, 3, 7, 8, 15, 16, 17, 25, 40] {
                var batch: [Double] = []
                model.score(data.matrix, rows: start..<start + length, binding: binding, into: &batch)
                let rows = (start..<start + length).map { model.score(data.matrix, row: $0).bitPattern }
                #expect(batch.map(\.bitPattern) == rows, "a span of \(length)")
                start += length
            }
        }
    }

    /// A forest that adopts a federated average takes its trees, except in the slots it rebuilt
    /// since the copy the average was made from.
    @Test func adoptingAnAverageKeepsTheTreesRebuiltSinceTheSnapshot() {
        let data = ModelFixture.shared
        let spec = IsolationForestSpec(trees: 20, sample: 64, windowEvents: 640)
        var mine = IsolationForest(features: Self.features, spec: spec, seed: 1)
        var peer = IsolationForest(features: Self.features, spec: spec, seed: 2)
        _ = ModelConformance.prequential(&mine, data, rows: 0..<2_000)
        _ = ModelConformance.prequential(&peer, data, rows: 2_000..<4_000)
        let snapshot = mine
        var average = snapshot
        average.adoptTrees(of: peer, at: 10..<20)  // half the slots from each

        var idle = mine
        idle.adoptTrees(of: average, keepingChangesSince: snapshot)
        #expect(idle.forest == average.forest, "nothing rebuilt since: every tree is the average's")

        // 96 more events rebuild three trees (one every 640 / 20 = 32 events).
        _ = ModelConformance.prequential(&mine, data, rows: 4_000..<4_096)
        var busy = mine
        busy.adoptTrees(of: average, keepingChangesSince: snapshot)
        let kept = (0..<20).filter { busy.forest[$0] == mine.forest[$0] && mine.forest[$0] != snapshot.forest[$0] }
        let taken = (0..<20).filter { busy.forest[$0] == average.forest[$0] }
        #expect(kept.count == 3, "the rebuilt trees stay: \(kept)")
        #expect(taken.count == 17)
    }

    /// A forest given a third of the stream grows its trees from the newest third of its window
    /// and rebuilds them three times as often, so it spans the same stretch of the stream as one
    /// forest that sees all of it: two thirds of a window after a shift, its trees know only the
    /// new values, while a whole window's still split on the old ones.
    @Test func aShareOfTheStreamShortensTheWindowToTheNewestEvents() {
        let spec = IsolationForestSpec(trees: 10, sample: 32, windowEvents: 960)
        var matrix = FeatureMatrix(names: ["x"])
        matrix.reset(rows: 1)
        func learning(_ share: Double) -> IsolationForest {
            var forest = IsolationForest(features: ["x"], spec: spec, seed: 3)
            forest.streamShare = share
            var random = SeededRandom(seed: 9)
            for i in 0..<1_600 {  // a full window around 0, then two thirds of one around 100
                matrix.values = [(i < 960 ? 0 : 100) + random.unit()]
                forest.learn(matrix, row: 0, label: nil)
            }
            return forest
        }
        /// Whether every split of every tree lies among the new values.
        func splitsOnlyNewValues(_ forest: IsolationForest) -> Bool {
            forest.forest.allSatisfy { tree in tree.nodes.allSatisfy { $0.feature < 0 || $0.value >= 100 } }
        }
        let third = learning(1.0 / 3)
        let whole = learning(1)
        #expect(third.activeWindow == 320 && whole.activeWindow == 960)
        #expect(third.learnsUntilChange <= 32, "a tree rebuilt every 320 / 10 events")
        let onlyNew = (third: splitsOnlyNewValues(third), whole: splitsOnlyNewValues(whole))
        #expect(onlyNew.third)
        #expect(!onlyNew.whole)
        var small = IsolationForest(features: ["x"], spec: spec)
        small.streamShare = 0.01
        #expect(small.activeWindow == 32, "never fewer than `sample` events")
    }

    /// Points far from a dense cloud score high, points inside it low, once the window holds
    /// `sample` events; before that every score is 0.5.
    @Test func isolatesOutliersAfterAShortWarmUp() {
        var rng = SeededRandom(seed: 3)
        var forest = IsolationForest(features: ["x", "y"], spec: IsolationForestSpec(trees: 50, sample: 128), seed: 1)
        var m = FeatureMatrix(names: ["x", "y"])
        m.reset(rows: 1)
        func point(_ x: Double, _ y: Double) -> FeatureMatrix {
            var p = m
            p.values = [x, y]
            return p
        }
        #expect(forest.score(point(0, 0), row: 0) == 0.5)
        for i in 0..<2_000 {
            forest.learn(point(rng.gaussian(), rng.gaussian()), row: 0, label: nil)
            if i == forest.warmUpEvents - 2 { #expect(!forest.isWarm) }
        }
        #expect(forest.isWarm)
        let inside = forest.score(point(0.1, -0.2), row: 0)
        let outside = forest.score(point(6, 6), row: 0)
        #expect(inside < 0.5 && outside > 0.65, "inside \(inside), outside \(outside)")
        let why = forest.explain(point(0.1, 8), row: 0, top: 2)
        #expect(why.first?.feature == "y")
    }

    /// The forest forgets: after the data moves, the old region becomes anomalous and the new
    /// one normal within about one window.
    @Test func forgetsTheOldWindow() {
        var rng = SeededRandom(seed: 4)
        var forest = IsolationForest(
            features: ["x"], spec: IsolationForestSpec(trees: 50, sample: 128, windowEvents: 1_280), seed: 2)
        var m = FeatureMatrix(names: ["x"])
        m.reset(rows: 1)
        func at(_ x: Double) -> FeatureMatrix {
            var p = m
            p.values = [x]
            return p
        }
        for _ in 0..<5_000 { forest.learn(at(rng.gaussian()), row: 0, label: nil) }
        let oldBefore = forest.score(at(0), row: 0)
        let newBefore = forest.score(at(20), row: 0)
        for _ in 0..<3_000 { forest.learn(at(20 + rng.gaussian()), row: 0, label: nil) }
        let oldAfter = forest.score(at(0), row: 0)
        let newAfter = forest.score(at(20), row: 0)
        #expect(oldBefore < 0.5 && newBefore > 0.6)
        #expect(oldAfter > 0.6 && newAfter < 0.5, "old \(oldAfter), new \(newAfter)")
    }
}
