import Testing
import VigilCore
import VigilModels

/// The checks every model passes (after River's `river/checks/`): input not mutated, column order
/// irrelevant, missing and unknown columns tolerated, a checkpoint round trip giving identical
/// scores, equal seeds giving equal models, and better than chance on the labelled fixture.
enum ModelConformance {
    /// Scores every row before learning from it (prequential), with each label arriving
    /// `labelDelay` rows after its event. Returns the scores.
    static func prequential<M: OnlineModel>(
        _ model: inout M, _ data: ModelFixture.Data, rows: Range<Int>? = nil, labelDelay: Int = 500
    ) -> [Double] {
        let range = rows ?? 0..<data.matrix.rows
        var scores: [Double] = []
        scores.reserveCapacity(range.count)
        for r in range {
            scores.append(model.score(data.matrix, row: r))
            model.learn(data.matrix, row: r, label: nil)
            let labelled = r - labelDelay
            if labelled >= range.lowerBound { model.learn(data.matrix, row: labelled, label: data.labels[labelled]) }
        }
        return scores
    }

    static func check<M: OnlineModel & Equatable>(
        _ make: (UInt64) -> M, trainRows: Int = 15_000, minimumAUC: Double = 0.5,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let data = ModelFixture.shared
        var model = make(1)
        _ = prequential(&model, data, rows: 0..<trainRows)
        let probe = trainRows..<min(data.matrix.rows, trainRows + 2_000)

        // Scoring does not mutate its input, and the batch path agrees with the single one (to
        // rounding: a batch may sum in another order, e.g. through CBLAS).
        let before = data.matrix.values
        var batchScores: [Double] = []
        model.score(data.matrix, into: &batchScores)
        #expect(data.matrix.values.map(\.bitPattern) == before.map(\.bitPattern), sourceLocation: sourceLocation)
        let batch = (0..<data.matrix.rows).map { model.score(data.matrix, row: $0) }
        for r in probe.prefix(200) {
            #expect(abs(batchScores[r] - batch[r]) <= 1e-12, sourceLocation: sourceLocation)
            #expect(batch[r] >= 0 && batch[r] <= 1, "score \(batch[r]) outside [0, 1]", sourceLocation: sourceLocation)
        }

        // Column order does not matter.
        let permuted = ModelFixture.permuted(data.matrix, seed: 5)
        for r in probe.prefix(200) {
            #expect(
                model.score(permuted, row: r).bitPattern == batch[r].bitPattern, "row \(r)",
                sourceLocation: sourceLocation)
        }

        // A missing column and an unknown one are tolerated.
        let reshaped = ModelFixture.reshaped(data.matrix, drop: ModelFixture.numericFeatures[1], extra: "not_a_feature")
        for r in probe.prefix(200) {
            let s = model.score(reshaped, row: r)
            #expect(s.isFinite && s >= 0 && s <= 1, sourceLocation: sourceLocation)
        }
        var tolerant = model
        tolerant.learn(reshaped, row: probe.lowerBound, label: nil)
        tolerant.learn(reshaped, row: probe.lowerBound, label: true)

        // A checkpoint round trip gives the same model and the same scores, bit for bit.
        let bytes = model.checkpoint(schema: 99)
        let restored = try? M.restore(bytes, schema: 99)
        #expect(restored == model, sourceLocation: sourceLocation)
        if let restored {
            for r in probe.prefix(200) {
                #expect(
                    restored.score(data.matrix, row: r).bitPattern == batch[r].bitPattern,
                    sourceLocation: sourceLocation)
            }
        }
        // ... and survives damage with an error, never a crash.
        for position in stride(from: 0, to: bytes.count, by: max(1, bytes.count / 64)) {
            var damaged = bytes
            damaged[position] ^= 0x41
            #expect(throws: CheckpointError.self, sourceLocation: sourceLocation) { try M.restore(damaged, schema: 99) }
        }

        // The batch form of unlabelled learning is the per-row one.
        var perRow = make(1)
        var batched = make(1)
        for r in 0..<2_000 { perRow.learn(data.matrix, row: r, label: nil) }
        batched.learnUnlabelled(data.matrix, rows: 0..<2_000)
        #expect(perRow == batched, sourceLocation: sourceLocation)

        // Equal seeds, equal training: equal models.
        var twin = make(1)
        _ = prequential(&twin, data, rows: 0..<trainRows)
        #expect(twin == model, sourceLocation: sourceLocation)

        // Better than chance on what it has not learned yet.
        let test = trainRows..<data.matrix.rows
        let scores = prequential(&model, data, rows: test)
        let auc = RankingMetrics.rocAUC(scores: scores, labels: Array(data.labels[test])) ?? 0
        #expect(auc > minimumAUC, "ROC-AUC \(auc) on the fixture", sourceLocation: sourceLocation)
    }
}
