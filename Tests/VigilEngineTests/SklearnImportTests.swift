import Foundation
import Testing
import VigilCore
import VigilFeatures
import VigilTestKit

@testable import VigilEngine
@testable import VigilModels

/// Models fitted in scikit-learn, exported by scripts/export_sklearn.py and loaded through a
/// topology's `init:`: they score the same rows as scikit-learn does, then learn on.
@Suite(.ownThread, .serialized) struct SklearnImportTests {
    static let columns = ["amount", "since_last", "txn_count_10m"]

    /// Fits the three models on seeded rows, exports them, and writes the test rows with
    /// scikit-learn's scores: `rows.json` = {rows, forest, scaled, bare}.
    static let fit = #"""
        import json, subprocess, sys, joblib
        import numpy as np
        from sklearn.ensemble import IsolationForest
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        out, exporter = sys.argv[1], sys.argv[2]
        rng = np.random.default_rng(7)
        def rows(n):
            x = np.column_stack([rng.lognormal(3, 1, n), rng.exponential(600, n), rng.poisson(2, n)]).astype(float)
            y = (0.02 * x[:, 0] - 0.002 * x[:, 1] + 0.8 * x[:, 2] + rng.normal(0, 1, n)) > 3.5
            return x, y
        x, y = rows(5000)
        test, _ = rows(2000)
        test[:20, 0] *= 40  # a few outliers
        forest = IsolationForest(n_estimators=100, max_samples=256, random_state=0).fit(x)
        scaled = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(x, y)
        small = rng.normal(0, 1, (5000, 3)); small_y = small @ [1.0, -2.0, 0.5] + rng.normal(0, 1, 5000) > 0
        bare = LogisticRegression().fit(small, small_y)
        small_test = np.clip(rng.normal(0, 1, (2000, 3)), -9, 9)
        cols = "amount,since_last,txn_count_10m"
        for name, model in [("forest", forest), ("scaled", scaled), ("bare", bare)]:
            joblib.dump(model, f"{out}/{name}.joblib")
            subprocess.run([sys.executable, exporter, f"{out}/{name}.joblib", "--columns", cols, "-o", f"{out}/{name}.json"], check=True)
        json.dump({"rows": test.tolist(), "small_rows": small_test.tolist(),
                   "forest": forest.score_samples(test).tolist(),
                   "scaled": scaled.predict_proba(test)[:, 1].tolist(),
                   "bare": bare.predict_proba(small_test)[:, 1].tolist()}, open(f"{out}/rows.json", "w"))
        """#

    static func topology(_ dir: URL, forest: String, regression: String, positiveWeight: Double = 50) -> String {
        let shipped = try! String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        return
            shipped
            .replacingOccurrences(
                of:
                    "    features: [amount, txn_count_10m, amount_sum_1h, amount_z, merchants_1h, new_country, since_last, amount_vs_day]",
                with: "    init: \(forest)"
            )
            .replacingOccurrences(
                of: "    positive_weight: 50 ", with: "    positive_weight: \(positiveWeight)\n    init: \(regression) "
            )
    }

    func matrix(_ rows: [[Double]], names: [String]) -> FeatureMatrix {
        var m = FeatureMatrix(names: names)
        m.reset(rows: rows.count)
        // The topology's feature order differs from the files' column order on purpose.
        m.values = rows.flatMap { r in names.map { r[Self.columns.firstIndex(of: $0)!] } }
        return m
    }

    @Test func importedModelsScoreAsScikitLearnDoesThenKeepLearning() throws {
        let python = try EvaluateTests.tools(need: "sklearn")
        guard let python else { return }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-sklearn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let exporter = CLI.repositoryRoot.appendingPathComponent("scripts/export_sklearn.py").path
        _ = try EvaluateTests.output(python, ["-c", Self.fit, dir.path, exporter])
        let expected = try #require(
            try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("rows.json")))
                as? [String: Any])
        let rows = expected["rows"] as! [[Double]]
        let smallRows = expected["small_rows"] as! [[Double]]

        // Through a topology file, with paths relative to it.
        let file = dir.appendingPathComponent("imported.yaml")
        try Self.topology(dir, forest: "forest.json", regression: "scaled.json").write(
            to: file, atomically: true, encoding: .utf8)
        let topology = try TopologyLoader.load(path: file.path)
        let forestSpec = try #require(topology.models.first { $0.name == "iforest" })
        let lrSpec = try #require(topology.models.first { $0.name == "fraud_lr" })
        #expect(forestSpec.features == Self.columns && lrSpec.features == Self.columns)
        #expect(forestSpec.initFile == "forest.json")
        // The version names the file: a model started from another file is another model.
        let plain = try TopologyLoader.load(
            path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path)
        let versions = try Pipeline.modelVersions(of: topology)
        #expect(Set(versions).isDisjoint(with: try Pipeline.modelVersions(of: plain)))

        // The plan's order of these features, not the files'.
        let plan = try FeaturePlan(
            features: topology.features, layout: EventLayout(schema: topology.schema), state: topology.state)
        let names = plan.names.filter { Self.columns.contains($0) }
        #expect(names != Self.columns)
        let m = matrix(rows, names: names)

        var forest = IsolationForest(
            features: names, imported: try #require(forestSpec.initial),
            spec: IsolationForestSpec(trees: 100, sample: 256), seed: forestSpec.seed)
        let ours = (0..<rows.count).map { forest.score(m, row: $0) }
        let theirs = (expected["forest"] as! [Double]).map { -$0 }
        let rho = try #require(RankingMetrics.spearman(ours, theirs))
        #expect(rho >= 0.999, "Spearman \(rho)")
        let worst = zip(ours, theirs).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "scores differ by up to \(worst)")

        guard case .logisticRegression(let lrKind) = lrSpec.kind else {
            Issue.record("not a regression")
            return
        }
        let scaled = LogisticRegression(
            features: names, categories: [], parameters: .init(lrKind), imported: try #require(lrSpec.initial))
        let p = (0..<rows.count).map { scaled.score(m, row: $0) }
        let sk = expected["scaled"] as! [Double]
        // The rows beyond 10 standard deviations are clipped by design (docs/models.md).
        let within = (0..<rows.count).filter { r in
            (0..<3).allSatisfy { j in
                let s = scaled.inputStats(names.firstIndex(of: Self.columns[j])!)
                return abs((rows[r][j] - s.mean) / s.standardDeviation) <= 10
            }
        }
        #expect(within.count > 1_900)
        let gap = within.map { abs(p[$0] - sk[$0]) }.max()!
        #expect(gap < 1e-6, "probabilities differ by up to \(gap) (positive_weight 50 folded into the bias)")

        // Without a scaler, on inputs within ±10.
        let bare = try ImportedModel.parse(Data(contentsOf: dir.appendingPathComponent("bare.json")))
        var parameters = LogisticRegression.Parameters()
        parameters.positiveWeight = 1
        var lr = LogisticRegression(features: names, categories: [], parameters: parameters, imported: bare)
        let small = matrix(smallRows, names: names)
        let bareGap = zip((0..<smallRows.count).map { lr.score(small, row: $0) }, expected["bare"] as! [Double])
            .map { abs($0 - $1) }.max()!
        #expect(bareGap < 1e-6, "bare regression differs by up to \(bareGap)")
        print(
            "sklearn parity: forest Spearman \(rho), largest score difference \(worst); scaled regression \(gap) over \(within.count) rows; bare regression \(bareGap)"
        )

        // Both keep learning: the regression from labels, the forest from the stream.
        let before = lr.score(small, row: 0)
        for r in 0..<200 { lr.learn(small, row: r, label: r % 3 == 0) }
        #expect(lr.score(small, row: 0) != before)
        let firstTrees = forest.forest
        for r in 0..<rows.count { forest.learn(m, row: r, label: nil) }
        #expect(forest.forest != firstTrees, "the forest rebuilt trees from the stream")
        #expect(forest.forest.filter { firstTrees.contains($0) }.count > 0, "and kept some of scikit-learn's")
    }

    @Test func aBadInitFileIsRefusedWithItsProblemNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-sklearn-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let lr =
            #"{"format":"vigil.sklearn","version":1,"kind":"logistic_regression","columns":["amount","mcc"],"logistic_regression":{"coefficients":[1,2],"intercept":0}}"#
        try lr.write(to: dir.appendingPathComponent("lr.json"), atomically: true, encoding: .utf8)
        try "{".write(to: dir.appendingPathComponent("broken.json"), atomically: true, encoding: .utf8)
        for (forest, regression, message) in [
            ("missing.json", "lr.json", "cannot read"),
            ("broken.json", "lr.json", "not a model export of scripts/export_sklearn.py"),
            ("lr.json", "lr.json", "holds a logistic_regression, not a isolation_forest"),
        ] {
            let file = dir.appendingPathComponent("t.yaml")
            try Self.topology(dir, forest: forest, regression: regression).write(
                to: file, atomically: true, encoding: .utf8)
            #expect {
                try TopologyLoader.load(path: file.path)
            } throws: { error in
                let text = "\(error)"
                return text.contains("models[0].init") && text.contains(message)
            }
        }
        let file = dir.appendingPathComponent("t.yaml")
        let text = Self.topology(dir, forest: "missing.json", regression: "lr.json")
            .replacingOccurrences(of: "    init: missing.json", with: "")
        try text.write(to: file, atomically: true, encoding: .utf8)
        #expect {
            try TopologyLoader.load(path: file.path)
        } throws: { error in
            "\(error)".contains("column 'mcc' is a category feature")
        }
    }
}

extension LogisticRegression {
    /// The running standardisation of numeric feature `j` (tests only).
    func inputStats(_ j: Int) -> RunningStats { stats[j] }
}
