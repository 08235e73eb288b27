import Foundation
import VigilCore

/// A model trained elsewhere, in the JSON form `scripts/export_sklearn.py` writes from a fitted
/// scikit-learn `IsolationForest`, or a `LogisticRegression` behind an optional
/// `StandardScaler`: what a model entry's `init: FILE` starts from before it keeps learning
/// online (docs/models.md, "Starting from scikit-learn").
public struct ImportedModel: Sendable, Hashable {
    /// The feature each input column is, in the file's column order.
    public var columns: [String]
    public var body: Body
    /// `StableHash` (hex) of the file's bytes: model versions include it.
    public var digest: String
    /// The scikit-learn version that fitted it (as the exporter recorded it).
    public var sklearnVersion: String

    public enum Body: Sendable, Hashable {
        case isolationForest(maxSamples: Int, trees: [Tree])
        case logisticRegression(Regression)
    }

    /// One scikit-learn tree (`tree_`'s arrays): node `i` sends `x[feature[i]] <= threshold[i]`
    /// to `left[i]`, the rest to `right[i]`; leaves have `left == -1`; `samples` counts the
    /// training rows that reached each node.
    public struct Tree: Sendable, Hashable {
        public var feature: [Int]
        public var threshold: [Double]
        public var left: [Int]
        public var right: [Int]
        public var samples: [Int]
    }

    /// A fitted regression: `coefficients` over the columns (standardised by the scaler when
    /// there is one), its intercept, and the weight its training gave positives.
    public struct Regression: Sendable, Hashable {
        public var coefficients: [Double]
        public var intercept: Double
        /// The scaler's mean and variance per column, and the rows it saw; nil without a scaler.
        public var scalerMean: [Double]?
        public var scalerVariance: [Double]?
        public var samples: Int
        /// The weight of a positive against a negative in the fit (`class_weight`); 1 without.
        public var positiveWeight: Double
    }

    public var kindName: String {
        switch body {
        case .isolationForest: "isolation_forest"
        case .logisticRegression: "logistic_regression"
        }
    }

    // The file format, decoded as written.
    private struct File: Decodable {
        var format: String
        var version: Int
        var kind: String
        var columns: [String]
        var sklearnVersion: String?
        var isolationForest: Forest?
        var logisticRegression: LogisticFile?

        struct Forest: Decodable {
            var maxSamples: Int
            var trees: [TreeFile]
        }
        struct TreeFile: Decodable {
            var feature: [Int]
            var threshold: [Double]
            var left: [Int]
            var right: [Int]
            var samples: [Int]
        }
        struct LogisticFile: Decodable {
            var coefficients: [Double]
            var intercept: Double
            var positiveWeight: Double?
            var samples: Int?
            var scaler: Scaler?
        }
        struct Scaler: Decodable {
            var mean: [Double]
            var variance: [Double]
            var samples: Int
        }
    }

    /// Parses and checks a file's bytes.
    /// - Throws: `VigilError(.malformedInput)` saying what is wrong.
    public static func parse(_ data: Data) throws(VigilError) -> ImportedModel {
        let file: File
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            file = try decoder.decode(File.self, from: data)
        } catch {
            throw VigilError(.malformedInput, "not a model export of scripts/export_sklearn.py: \(error)")
        }
        func bad(_ message: String) -> VigilError { VigilError(.malformedInput, message) }
        guard file.format == "vigil.sklearn" else { throw bad("format is '\(file.format)', not 'vigil.sklearn'") }
        guard file.version == 1 else { throw bad("format version \(file.version) is newer than this Vigil reads (1)") }
        let d = file.columns.count
        guard d > 0, Set(file.columns).count == d else { throw bad("columns must be distinct feature names") }
        let body: Body
        switch file.kind {
        case "isolation_forest":
            guard let f = file.isolationForest else { throw bad("kind isolation_forest without 'isolation_forest'") }
            guard (2...4096).contains(f.maxSamples) else { throw bad("max_samples \(f.maxSamples) is not in 2...4096") }
            guard !f.trees.isEmpty, f.trees.count <= 10_000 else { throw bad("a forest needs 1...10000 trees") }
            var trees: [Tree] = []
            for (k, t) in f.trees.enumerated() {
                let n = t.feature.count
                guard n > 0, n <= 65_535,
                    [t.threshold.count, t.left.count, t.right.count, t.samples.count].allSatisfy({ $0 == n })
                else { throw bad("tree \(k): its arrays differ in length or are empty") }
                for i in 0..<n where t.left[i] >= 0 {
                    guard t.left[i] > i, t.left[i] < n, t.right[i] > i, t.right[i] < n, (0..<d).contains(t.feature[i]),
                        t.threshold[i].isFinite
                    else { throw bad("tree \(k), node \(i): a child, feature or threshold is out of range") }
                }
                trees.append(
                    Tree(feature: t.feature, threshold: t.threshold, left: t.left, right: t.right, samples: t.samples))
            }
            body = .isolationForest(maxSamples: f.maxSamples, trees: trees)
        case "logistic_regression":
            guard let r = file.logisticRegression else {
                throw bad("kind logistic_regression without 'logistic_regression'")
            }
            guard r.coefficients.count == d, r.coefficients.allSatisfy(\.isFinite), r.intercept.isFinite else {
                throw bad("logistic_regression needs one finite coefficient per column and a finite intercept")
            }
            if let s = r.scaler {
                guard s.mean.count == d, s.variance.count == d, s.samples > 1,
                    s.mean.allSatisfy(\.isFinite), s.variance.allSatisfy({ $0.isFinite && $0 >= 0 })
                else { throw bad("the scaler needs a mean and a variance per column, over more than one row") }
            }
            let w = r.positiveWeight ?? 1
            guard w.isFinite, w > 0 else { throw bad("positive_weight must be > 0") }
            body = .logisticRegression(
                Regression(
                    coefficients: r.coefficients, intercept: r.intercept, scalerMean: r.scaler?.mean,
                    scalerVariance: r.scaler?.variance, samples: r.scaler?.samples ?? r.samples ?? 1_000_000,
                    positiveWeight: w))
        default:
            throw bad("kind '\(file.kind)' is not isolation_forest or logistic_regression")
        }
        let digest = data.withUnsafeBytes { StableHash.hex(StableHash.hash($0)) }
        return ImportedModel(
            columns: file.columns, body: body, digest: digest, sklearnVersion: file.sklearnVersion ?? "unknown")
    }
}
