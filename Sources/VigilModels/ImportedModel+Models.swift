#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension IsolationForest {
    /// A forest that starts from scikit-learn's trees (`init:`), then learns on as any forest:
    /// once its window holds `sample` events, its trees are replaced in rotation by trees of
    /// the stream. `features` are the model's columns in its own order; the file's columns are
    /// matched to them by name. The tree count and sample size are the file's.
    ///
    /// Scores equal `-score_samples` of scikit-learn up to float rounding: the same path lengths
    /// with the leaves' `c(n)` correction, over `c(max_samples)`.
    public init(features: [String], imported: ImportedModel, spec: IsolationForestSpec, seed: UInt64) {
        guard case .isolationForest(let maxSamples, let trees) = imported.body else {
            preconditionFailure("not an imported isolation forest")
        }
        let index = Dictionary(uniqueKeysWithValues: features.enumerated().map { ($1, $0) })
        let column = imported.columns.map { index[$0]! }
        self.init(
            features: features,
            spec: IsolationForestSpec(trees: trees.count, sample: maxSamples, windowEvents: spec.windowEvents),
            seed: seed)
        forest = trees.map { Self.tree(from: $0, column: column) }
    }

    /// A scikit-learn tree in this forest's layout (children side by side), its `x <= t` tests
    /// turned into the `x < v` this forest makes: on float inputs, `v` is the next float above
    /// the largest float not above `t`.
    static func tree(from t: ImportedModel.Tree, column: [Int]) -> Tree {
        var nodes: [Node] = []
        nodes.reserveCapacity(t.feature.count)
        nodes.append(leaf(0))
        var work = [(ours: 0, theirs: 0)]
        while let (ours, theirs) = work.popLast() {
            guard t.left[theirs] >= 0 else {
                nodes[ours] = leaf(t.samples[theirs])
                continue
            }
            let left = nodes.count
            nodes.append(leaf(0))
            nodes.append(leaf(0))
            var below = Float(t.threshold[theirs])
            if Double(below) > t.threshold[theirs] { below = below.nextDown }
            nodes[ours] = Node(feature: Int16(column[t.feature[theirs]]), value: below.nextUp, left: left)
            work.append((left, t.left[theirs]))
            work.append((left + 1, t.right[theirs]))
        }
        return Tree(nodes: nodes)
    }
}

extension LogisticRegression {
    /// A regression that starts from scikit-learn's fit (`init:`), then learns on from labels.
    /// The scaler's mean and variance become the running standardisation (weighted as the rows
    /// it saw); without a scaler the standardisation is the identity, weighted as a million
    /// rows. The coefficients become the weights, the intercept the bias, shifted by
    /// ln(positive_weight / the fit's positive weight) so that the calibrated probabilities are
    /// scikit-learn's. Category weights (none, when loaded through `init:`) start at 0.
    ///
    /// Probabilities equal `predict_proba` while every standardised input is within ±10 (this
    /// model clips beyond: one absurd value cannot throw the weights).
    public init(
        features: [String], categories: [(name: String, buckets: Int)], parameters: Parameters,
        imported: ImportedModel
    ) {
        guard case .logisticRegression(let fit) = imported.body else {
            preconditionFailure("not an imported logistic regression")
        }
        self.init(features: features, categories: categories, parameters: parameters)
        let position = Dictionary(uniqueKeysWithValues: imported.columns.enumerated().map { ($1, $0) })
        for (j, name) in features.enumerated() {
            guard let c = position[name] else { continue }
            let mean = fit.scalerMean?[c] ?? 0
            let variance = fit.scalerVariance?[c] ?? 1
            stats[j] = RunningStats(count: Double(fit.samples), mean: mean, m2: variance * Double(fit.samples))
            setWeight(j, fit.coefficients[c])
        }
        setWeight(biasIndex, fit.intercept + log(parameters.positiveWeight / fit.positiveWeight))
    }

    /// Sets coordinate `i`'s state so that `weight(i)` is `w`, as if nothing had been learned
    /// on it yet (FTRL's n = 0, AdaGrad's sum = 0).
    private mutating func setWeight(_ i: Int, _ w: Double) {
        b[i] = 0
        switch parameters.optimizer {
        case .adagrad:
            a[i] = w
        case .ftrl:
            guard w != 0 else {
                a[i] = 0
                return
            }
            let l1 = i == biasIndex ? 0 : parameters.l1
            let l2 = i == biasIndex ? 0 : parameters.l2
            // weight = -(z - sign(z) l1) / (β / α + l2), and z has the sign opposite to w.
            a[i] = -w * (Self.beta / parameters.learningRate + l2) - (w > 0 ? l1 : -l1)
        }
    }
}

extension RunningStats {
    /// Statistics of `count` values with this mean and sum of squared deviations.
    init(count: Double, mean: Double, m2: Double) {
        self.init()
        self.count = count
        self.mean = mean
        self.m2 = m2
    }
}
