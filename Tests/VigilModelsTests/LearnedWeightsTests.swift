import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct LearnedWeightsTests {
    /// A stream where model 0 knows the label and model 1 is noise, combined with equal topology
    /// weights: the fixed mean ranks worse than model 0 alone, and the learned weights give
    /// model 1 (almost) nothing, so the ensemble ranks as well as its best member.
    @Test func learnedWeightsDropANoiseModelAndRankAsTheBestMember() {
        var rng = SeededRandom(seed: 3)
        var fixed = Ensemble(weights: [1, 1], minimumScores: 100)
        var learned = Ensemble(weights: [1, 1], minimumScores: 100, learnsWeights: true)
        var labels: [Bool] = []
        var good: [Double] = []
        var fixedScores: [Double] = []
        var learnedScores: [Double] = []
        var pending: [(scores: [Double], fraud: Bool)] = []
        var percentiles = [Double.nan, .nan]
        for _ in 0..<40_000 {
            let fraud = rng.chance(0.02)
            let informative = min(1, max(0, 0.3 + (fraud ? 0.25 : 0) + 0.1 * rng.gaussian()))
            let noise = rng.unit()
            let scores = [informative, noise]
            let a = fixed.combine(scores, counted: [true, true], percentiles: &percentiles)
            let b = learned.combine(scores, counted: [true, true], percentiles: &percentiles)
            labels.append(fraud)
            good.append(informative)
            fixedScores.append(a.isNaN ? 0 : a)
            learnedScores.append(b.isNaN ? 0 : b)
            // Labels arrive 50 events later, as a labels topic delivers them.
            pending.append((scores, fraud))
            if pending.count > 50 {
                let due = pending.removeFirst()
                learned.learn(scores: { due.scores[$0] }, fraud: due.fraud)
            }
        }
        let best = RankingMetrics.rocAUC(scores: good, labels: labels)!
        let mean = RankingMetrics.rocAUC(scores: fixedScores, labels: labels)!
        let stacked = RankingMetrics.rocAUC(scores: learnedScores, labels: labels)!
        #expect(mean < best - 0.05, "the fixed mean is pulled down by the noise: \(mean) against \(best)")
        #expect(stacked > best - 0.01, "learned \(stacked), best member \(best), fixed mean \(mean)")
        let w = learned.effectiveWeights
        #expect(w[0] > 10 * w[1], "weights \(w)")
        #expect(abs(w[0] + w[1] - 2) < 1e-9, "the learned weights keep the topology's total")
    }

    /// Until fraud labels come, the topology's weights hold; a shadow (weight 0) stays out
    /// whatever was learned; a model started afresh learns its coefficient again.
    @Test func thePriorHoldsUntilFraudLabelsComeAndAShadowStaysOut() {
        var weights = LearnedWeights(prior: [1, 2])
        for _ in 0..<500 { weights.learn([0.3, 0.7], fraud: false) }
        #expect(weights.current == [1, 2], "no fraud label yet: \(weights.current)")
        for k in 0..<200 { weights.learn(k % 2 == 0 ? [0.99, 0.5] : [0.2, 0.5], fraud: k % 2 == 0) }
        #expect(weights.positives == 100 && weights.labels == 700)
        #expect(weights.current[0] > weights.current[1])
        weights.apply(prior: [0, 1])
        #expect(weights.current[0] == 0)
        weights.apply(prior: [1, 1])
        weights.forget(model: 0)
        #expect(weights.coefficients[0] == 0)
    }

    /// The learned state round-trips through its checkpoint bytes by model name: a model the
    /// bytes do not name starts from coefficient 0, and damaged bytes change nothing.
    @Test func aCheckpointRestoresTheLearnedWeightsByModelName() throws {
        var weights = LearnedWeights(prior: [1, 1])
        for k in 0..<400 { weights.learn(k % 4 == 0 ? [0.95, 0.4] : [0.3, 0.6], fraud: k % 4 == 0) }
        var out = BinaryWriter()
        weights.encode(names: ["forest@1", "lr@1"], into: &out)

        var same = LearnedWeights(prior: [1, 1])
        var input = BinaryReader(out.bytes)
        try same.restore(names: ["forest@1", "lr@1"], from: &input)
        #expect(same == weights)

        var renamed = LearnedWeights(prior: [1, 1])
        input = BinaryReader(out.bytes)
        try renamed.restore(names: ["lr@1", "new@1"], from: &input)
        #expect(renamed.coefficients == [weights.coefficients[1], 0])
        #expect(renamed.labels == 400)

        var untouched = LearnedWeights(prior: [1, 1])
        input = BinaryReader(Array(out.bytes.prefix(out.bytes.count - 3)))
        #expect(throws: CheckpointError.self) { try untouched.restore(names: ["forest@1", "lr@1"], from: &input) }
        #expect(untouched == LearnedWeights(prior: [1, 1]))
    }

    /// Two models that each see half of the fraud: the mix ranks better than either alone, so
    /// the choice keeps the mix; with one of them replaced by noise it picks the other alone.
    @Test func theChoiceKeepsAMixThatBeatsEveryMemberAndDropsToTheBestAloneOtherwise() {
        for complementary in [true, false] {
            var rng = SeededRandom(seed: 5)
            var weights = LearnedWeights(prior: [1, 1])
            var labels: [Bool] = []
            var members: [[Double]] = [[], []]
            var combined: [Double] = []
            for _ in 0..<30_000 {
                let fraud = rng.chance(0.03)
                let kind = rng.chance(0.5)
                let a = min(1, max(0, 0.4 + (fraud && kind ? 0.3 : 0) + 0.1 * rng.gaussian()))
                let b =
                    complementary
                    ? min(1, max(0, 0.4 + (fraud && !kind ? 0.3 : 0) + 0.1 * rng.gaussian())) : rng.unit()
                let w = weights.current
                combined.append((w[0] * a + w[1] * b) / (w[0] + w[1]))
                members[0].append(a)
                members[1].append(b)
                labels.append(fraud)
                weights.learn([a, b], fraud: fraud)
            }
            let figures = weights.choice.figures
            if complementary {
                #expect(weights.choice.chosen == 0, "the mix ranks best: \(figures)")
                #expect(figures[0] > max(figures[1], figures[2]) + 0.05, "\(figures)")
            } else {
                #expect(weights.choice.chosen == 1 && weights.current == [2, 0], "\(figures) \(weights.current)")
            }
            let best = members.map { RankingMetrics.rocAUC(scores: $0, labels: labels)! }.max()!
            let final = RankingMetrics.rocAUC(scores: combined, labels: labels)!
            #expect(final > best - 0.01, "final \(final), best member \(best)")
        }
    }

    /// A checkpoint written before the choice existed (body version 1) restores its weights, and
    /// the choice starts from the mix.
    @Test func aVersionOneCheckpointRestoresWithoutAChoice() throws {
        var out = BinaryWriter()
        out.write(UInt8(1))
        out.write(2)
        for (name, c) in [("forest@1", 1.5), ("lr@1", 0.25)] {
            out.write(name)
            out.write(c)
            out.write(4.0)
        }
        out.write(-2.0)
        out.write(9.0)
        out.write(800)
        out.write(60)
        var weights = LearnedWeights(prior: [1, 1])
        var input = BinaryReader(out.bytes)
        try weights.restore(names: ["forest@1", "lr@1"], from: &input)
        #expect(weights.coefficients == [1.5, 0.25] && weights.positives == 60)
        #expect(weights.choice.chosen == 0 && weights.current == weights.mix)
    }
}
