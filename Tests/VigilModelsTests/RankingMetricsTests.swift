import Testing
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct RankingMetricsTests {
    /// scikit-learn's documented examples: roc_auc_score and average_precision_score of these.
    @Test func matchScikitLearnOnItsOwnExample() {
        let labels = [false, false, true, true]
        let scores = [0.1, 0.4, 0.35, 0.8]
        #expect(RankingMetrics.rocAUC(scores: scores, labels: labels) == 0.75)
        #expect(abs(RankingMetrics.averagePrecision(scores: scores, labels: labels)! - 0.8333333333333333) < 1e-12)
    }

    @Test func tiesCountHalfAndOneClassHasNoAUC() {
        #expect(RankingMetrics.rocAUC(scores: [0.5, 0.5], labels: [true, false]) == 0.5)
        #expect(RankingMetrics.rocAUC(scores: [0.1, 0.9], labels: [true, true]) == nil)
        #expect(RankingMetrics.averagePrecision(scores: [0.1, 0.9], labels: [false, false]) == nil)
        #expect(RankingMetrics.rocAUC(scores: [0.9, 0.1], labels: [true, false]) == 1)
        #expect(RankingMetrics.averagePrecision(scores: [0.9, 0.1], labels: [true, false]) == 1)
    }
}
