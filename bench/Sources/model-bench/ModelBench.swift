import ArgumentParser
import Foundation
import VigilCore
import VigilFeatures
import VigilModels
import VigilSynthetic

/// Quality and speed of Vigil's models, for bench/models-vs-peers.sh.
@main
struct ModelBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model-bench", abstract: "Quality and speed of VigilModels.",
        subcommands: [Quality.self, EnsembleQuality.self, Speed.self, Kernels.self])
}

/// A labelled CSV (features…, label) as one matrix.
struct LabelledData {
    var matrix: FeatureMatrix
    var labels: [Bool]

    init(csv path: String) throws {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(whereSeparator: \.isNewline)
        let header = lines.removeFirst().split(separator: ",").map(String.init)
        matrix = FeatureMatrix(names: Array(header.dropLast()))
        matrix.reset(rows: lines.count)
        labels = []
        let d = header.count - 1
        for (r, line) in lines.enumerated() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            for j in 0..<d { matrix.values[r * d + j] = Double(fields[j]) ?? .nan }
            labels.append(fields[d] == "1" || fields[d] == "true")
        }
    }

    init(matrix: FeatureMatrix, labels: [Bool]) {
        self.matrix = matrix
        self.labels = labels
    }

    func writeCSV(_ path: String) throws {
        var out = matrix.names.joined(separator: ",") + ",label\n"
        let d = matrix.names.count
        for r in 0..<matrix.rows {
            for j in 0..<d { out += String(matrix.values[r * d + j].isNaN ? 0 : matrix.values[r * d + j]) + "," }
            out += labels[r] ? "1\n" : "0\n"
        }
        try out.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

func nanoseconds(_ d: Duration) -> Double {
    let (s, atto) = d.components
    return Double(s) * 1e9 + Double(atto) / 1e9
}

func fmt(_ x: Double) -> String { String(format: "%.4f", x) }

/// Prequential run (score, then learn); labels are learned `labelDelay` rows later.
func prequential<M: OnlineModel>(_ model: inout M, _ data: LabelledData, labelDelay: Int) -> (
    scores: [Double], scoreNs: Double, learnNs: Double
) {
    var scores: [Double] = []
    scores.reserveCapacity(data.matrix.rows)
    var scoreTime = Duration.zero
    var learnTime = Duration.zero
    let clock = ContinuousClock()
    for r in 0..<data.matrix.rows {
        let t0 = clock.now
        scores.append(model.score(data.matrix, row: r))
        let t1 = clock.now
        model.learn(data.matrix, row: r, label: nil)
        let l = r - labelDelay
        if l >= 0 { model.learn(data.matrix, row: l, label: data.labels[l]) }
        learnTime += clock.now - t1
        scoreTime += t1 - t0
    }
    let n = Double(max(1, data.matrix.rows))
    return (scores, nanoseconds(scoreTime) / n, nanoseconds(learnTime) / n)
}

struct Quality: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Prequential ROC-AUC and AP of a model on a labelled CSV.")
    @Argument(help: "CSV with feature columns, then a 0/1 label column.") var csv: String
    @Option(help: "forest (trees rebuilt in rotation), counting (the counting forest) or lr.") var model = "forest"
    @Option(help: "Seed.") var seed: UInt64 = 42
    @Option(help: "lr only: ftrl or adagrad (default: the model's default).") var optimizer: String?
    @Option(help: "lr only: learning rate (default: the model's default).") var learningRate: Double?

    func run() throws {
        let data = try LabelledData(csv: csv)
        let result: (scores: [Double], scoreNs: Double, learnNs: Double)
        let name: String
        switch model {
        case "counting":
            var forest = CountingIsolationForest(features: data.matrix.names, seed: seed)
            result = prequential(&forest, data, labelDelay: 0)
            name = "vigil_counting_forest"
        case "lr":
            var p = LogisticRegression.Parameters()
            if let optimizer, let o = LogisticRegressionSpec.Optimizer(rawValue: optimizer) { p.optimizer = o }
            if let learningRate { p.learningRate = learningRate }
            var lr = LogisticRegression(features: data.matrix.names, parameters: p)
            result = prequential(&lr, data, labelDelay: 0)
            name = "vigil_lr"
        default:
            var forest = IsolationForest(features: data.matrix.names, seed: seed)
            result = prequential(&forest, data, labelDelay: 0)
            name = "vigil_forest"
        }
        let auc = RankingMetrics.rocAUC(scores: result.scores, labels: data.labels) ?? .nan
        let ap = RankingMetrics.averagePrecision(scores: result.scores, labels: data.labels) ?? .nan
        print(
            "model=\(name) events=\(data.labels.count) auc=\(fmt(auc)) ap=\(fmt(ap))"
                + " score_ns=\(Int(result.scoreNs)) learn_ns=\(Int(result.learnNs))")
    }
}

struct EnsembleQuality: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ensemble",
        abstract:
            "Prequential ROC-AUC of the forest, the regression, and the engine's ensemble of both: with the topology's equal weights, and with weights learned from the labels; and each model alone in a one-model ensemble, whose final score is its percentile."
    )
    @Argument(help: "CSV with feature columns, then a 0/1 label column.") var csv: String
    @Option(help: "Rows after which a row's label arrives.") var labelDelay = 0
    @Option(help: "Seed.") var seed: UInt64 = 42
    @Option(help: "Half-life of the percentile memory, in events.") var halfLife = 50_000.0
    @Option(help: "Scores a model needs before its percentiles count (the engine's worker: 1,000).")
    var minimumScores = 1000
    @Option(
        help:
            "Write every row's scores here (CSV): each model's own, alone and final, the learned ensemble's, and the label."
    )
    var scoresOut: String?

    func run() throws {
        let data = try LabelledData(csv: csv)
        var forest = IsolationForest(features: data.matrix.names, seed: seed)
        var lr = LogisticRegression(features: data.matrix.names)
        // As the engine's worker: percentiles count after 1,000 scores of a model.
        var fixed = Ensemble(weights: [1, 1], halfLifeEvents: halfLife, minimumScores: minimumScores)
        var learned = Ensemble(
            weights: [1, 1], halfLifeEvents: halfLife, minimumScores: minimumScores, learnsWeights: true)
        // Each model alone in a one-model ensemble: its final score against its own.
        var alone = [0, 1].map { _ in Ensemble(weights: [1], halfLifeEvents: halfLife, minimumScores: minimumScores) }
        var aloneScores: [[Double]] = [[], []]
        var one = [Double.nan]
        var raw: [[Double]] = []
        var fixedScores: [Double] = []
        var learnedScores: [Double] = []
        var percentiles = [Double.nan, .nan]
        for r in 0..<data.matrix.rows {
            let scores = [forest.score(data.matrix, row: r), lr.score(data.matrix, row: r)]
            raw.append(scores)
            let a = fixed.combine(scores, counted: [true, true], percentiles: &percentiles)
            let b = learned.combine(scores, counted: [true, true], percentiles: &percentiles)
            // As the worker: a provisional score until the percentiles count.
            fixedScores.append(a.isNaN ? (fixed.provisional.isNaN ? 0 : fixed.provisional) : a)
            learnedScores.append(b.isNaN ? (learned.provisional.isNaN ? 0 : learned.provisional) : b)
            for k in 0..<2 {
                let c = alone[k].combine([scores[k]], counted: [true], percentiles: &one)
                aloneScores[k].append(c.isNaN ? (alone[k].provisional.isNaN ? 0 : alone[k].provisional) : c)
            }
            forest.learn(data.matrix, row: r, label: nil)
            lr.learn(data.matrix, row: r, label: nil)
            let l = r - labelDelay
            if l >= 0 {
                forest.learn(data.matrix, row: l, label: data.labels[l])
                lr.learn(data.matrix, row: l, label: data.labels[l])
                learned.learn(scores: { raw[l][$0] }, fraud: data.labels[l])
            }
        }
        func auc(_ s: [Double]) -> Double { RankingMetrics.rocAUC(scores: s, labels: data.labels) ?? .nan }
        if let scoresOut {
            var text = "forest,lr,forest_final,lr_final,learned,label\n"
            for r in 0..<raw.count {
                text +=
                    "\(raw[r][0]),\(raw[r][1]),\(aloneScores[0][r]),\(aloneScores[1][r]),\(learnedScores[r]),\(data.labels[r] ? 1 : 0)\n"
            }
            try text.write(toFile: scoresOut, atomically: true, encoding: .utf8)
        }
        let forestAUC = auc(raw.map { $0[0] })
        let lrAUC = auc(raw.map { $0[1] })
        let weights = learned.effectiveWeights
        // The same after the percentiles' warm-up (1,000 scores), where the provisional scores end.
        let late = 1000..<max(1000, data.labels.count)
        func lateAUC(_ s: [Double]) -> Double {
            RankingMetrics.rocAUC(scores: Array(s[late]), labels: Array(data.labels[late])) ?? .nan
        }
        print(
            "forest_auc=\(fmt(forestAUC)) lr_auc=\(fmt(lrAUC)) best_member_auc=\(fmt(max(forestAUC, lrAUC)))"
                + " mean_auc=\(fmt(auc(fixedScores))) learned_auc=\(fmt(auc(learnedScores)))"
                + " learned_weights=\(fmt(weights[0])),\(fmt(weights[1])) events=\(data.labels.count)"
                + " after_warmup: forest_auc=\(fmt(lateAUC(raw.map { $0[0] }))) lr_auc=\(fmt(lateAUC(raw.map { $0[1] })))"
                + " learned_auc=\(fmt(lateAUC(learnedScores)))"
                + " one_model_forest_auc=\(fmt(auc(aloneScores[0]))) one_model_lr_auc=\(fmt(auc(aloneScores[1])))"
                + " one_model_after_warmup: forest_auc=\(fmt(lateAUC(aloneScores[0])))"
                + " lr_auc=\(fmt(lateAUC(aloneScores[1])))")
    }
}

struct Speed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "ns/event of score and learn at default sizes, memory and checkpoint speed, on the synthetic stream.")
    @Option(help: "Synthetic transactions.") var events = 200_000
    @Option(help: "Also write the synthetic feature rows and labels here, for the peers.") var csvOut: String?

    func run() throws {
        let data = synthetic(events: events)
        if let csvOut { try data.writeCSV(csvOut) }
        let clock = ContinuousClock()
        let n = Double(data.matrix.rows)

        // Forest at its defaults: learn everything (batch form), then score everything.
        var forest = IsolationForest(features: data.matrix.names, seed: 42)
        var t = clock.now
        forest.learnUnlabelled(data.matrix, rows: 0..<data.matrix.rows)
        let forestLearn = nanoseconds(clock.now - t) / n
        var scores: [Double] = []
        t = clock.now
        forest.score(data.matrix, into: &scores)
        let forestScore = nanoseconds(clock.now - t) / n

        var counting = CountingIsolationForest(features: data.matrix.names, seed: 42)
        t = clock.now
        counting.learnUnlabelled(data.matrix, rows: 0..<data.matrix.rows)
        let countingLearn = nanoseconds(clock.now - t) / n
        t = clock.now
        counting.score(data.matrix, into: &scores)
        let countingScore = nanoseconds(clock.now - t) / n

        var lr = LogisticRegression(features: data.matrix.names)
        t = clock.now
        for r in 0..<data.matrix.rows { lr.learn(data.matrix, row: r, label: data.labels[r]) }
        let lrLearn = nanoseconds(clock.now - t) / n
        t = clock.now
        lr.score(data.matrix, into: &scores)
        let lrScore = nanoseconds(clock.now - t) / n

        // Checkpoints: encode and decode throughput of the forest (the larger model).
        var encoded: [UInt8] = []
        var reps = 0
        t = clock.now
        while clock.now - t < .milliseconds(500) {
            encoded = forest.checkpoint(schema: 1)
            reps += 1
        }
        var body = BinaryWriter()
        forest.encode(into: &body)
        let mb = Double(body.bytes.count) / 1e6
        let encodeMBs = mb * Double(reps) / (nanoseconds(clock.now - t) / 1e9)
        reps = 0
        t = clock.now
        while clock.now - t < .milliseconds(500) {
            _ = try IsolationForest.restore(encoded, schema: 1)
            reps += 1
        }
        let decodeMBs = mb * Double(reps) / (nanoseconds(clock.now - t) / 1e9)

        // Quality on the synthetic stream, prequential, labels 500 events late.
        var f2 = IsolationForest(features: data.matrix.names, seed: 42)
        let fq = prequential(&f2, data, labelDelay: 500)
        var l2 = LogisticRegression(
            features: data.matrix.names,
            parameters: {
                var p = LogisticRegression.Parameters()
                p.positiveWeight = 20
                return p
            }())
        let lq = prequential(&l2, data, labelDelay: 500)
        print(
            "vigil events=\(data.labels.count) fraud=\(data.labels.filter { $0 }.count)"
                + " forest_score_ns=\(fmt(forestScore)) forest_learn_ns=\(fmt(forestLearn))"
                + " counting_score_ns=\(fmt(countingScore)) counting_learn_ns=\(fmt(countingLearn)) counting_bytes=\(counting.memoryBytes)"
                + " lr_score_ns=\(fmt(lrScore)) lr_learn_ns=\(fmt(lrLearn))"
                + " forest_bytes=\(forest.memoryBytes) lr_bytes=\(16 * (data.matrix.names.count + 1) + 24 * data.matrix.names.count)"
                + " checkpoint_bytes=\(encoded.count) body_bytes=\(body.bytes.count)"
                + " checkpoint_encode_mb_s=\(fmt(encodeMBs)) checkpoint_decode_mb_s=\(fmt(decodeMBs))"
                + " forest_auc=\(fmt(RankingMetrics.rocAUC(scores: fq.scores, labels: data.labels) ?? .nan))"
                + " forest_ap=\(fmt(RankingMetrics.averagePrecision(scores: fq.scores, labels: data.labels) ?? .nan))"
                + " lr_auc=\(fmt(RankingMetrics.rocAUC(scores: lq.scores, labels: data.labels) ?? .nan))"
                + " lr_ap=\(fmt(RankingMetrics.averagePrecision(scores: lq.scores, labels: data.labels) ?? .nan))")
    }

    /// The synthetic card-payment stream through the feature stage (card-payments features).
    func synthetic(events: Int) -> LabelledData {
        var config = TransactionStream.Config()
        config.events = events
        config.cards = 20_000
        config.fraudEpisodeRate = 0.002
        let rows = try! TransactionStream.featureRows(config)
        return LabelledData(matrix: rows.matrix, labels: rows.labels)
    }
}

/// CBLAS (`cblas_dgemv`) against the plain loop for linear scoring, by batch size.
struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "ns per row of LinearKernels.affineBLAS and affineLoop.")
    @Option(help: "Features per row.") var dims = 10

    func run() throws {
        LinearKernels.useSingleThread()
        var rng = SeededRandom(seed: 1)
        let weights = (0..<dims).map { _ in rng.gaussian() }
        print("dims=\(dims) openblas=\(LinearKernels.openBLASCore)")
        for batch in [1, 4, 16, 64, 256, 1024] {
            let rows = (0..<batch * dims).map { _ in rng.gaussian() }
            var out = [Double](repeating: 0, count: batch)
            func measure(
                _ kernel: (
                    UnsafeBufferPointer<Double>, Int, UnsafeBufferPointer<Double>, Double,
                    UnsafeMutableBufferPointer<Double>
                ) -> Void
            ) -> Double {
                let clock = ContinuousClock()
                var reps = 0
                let start = clock.now
                rows.withUnsafeBufferPointer { r in
                    weights.withUnsafeBufferPointer { w in
                        out.withUnsafeMutableBufferPointer { o in
                            while clock.now - start < .milliseconds(300) {
                                for _ in 0..<100 { kernel(r, batch, w, 0.5, o) }
                                reps += 100
                            }
                        }
                    }
                }
                return nanoseconds(clock.now - start) / Double(reps * batch)
            }
            let blas = measure { LinearKernels.affineBLAS(rows: $0, count: $1, weights: $2, bias: $3, out: $4) }
            let loop = measure { LinearKernels.affineLoop(rows: $0, count: $1, weights: $2, bias: $3, out: $4) }
            print("batch=\(batch) blas_ns_per_row=\(fmt(blas)) loop_ns_per_row=\(fmt(loop))")
        }
    }
}
