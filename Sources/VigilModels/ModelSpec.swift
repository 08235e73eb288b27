import VigilCore

/// One model of a topology, its role in the rollout and its hyper-parameters. Declared as a list
/// under `models:`, each entry tagged with `kind:`.
public struct ModelSpec: Sendable, Hashable {
    /// Unique name; alert records and metrics carry it. Key `name` (required).
    public var name: String
    /// Key `role` (default `active`).
    public var role: Role
    /// Weight in the ensemble of active models. Key `weight` (default 1, ≥ 0).
    public var weight: Double
    /// Share of entities routed to a canary model. Key `share` (role canary only, 0 < x < 1).
    public var canaryShare: Double?
    /// The features this model sees, by name. Key `features` (default: all of them).
    public var features: [String]?
    /// Seed for every random choice the model makes, so runs are reproducible. Key `seed` (default 0).
    public var seed: UInt64
    /// The active models a promotion of this challenger demotes to shadows. Key `replaces`
    /// (shadow and canary only; default: every active model, the whole ensemble).
    public var replaces: [String]?
    /// A set of challengers promoted together (a blue-green switch of an ensemble). Key `group`
    /// (shadow and canary only).
    public var group: String?
    /// The algorithm and its parameters.
    public var kind: Kind
    /// The model to start from, as written under key `init` (a file of scripts/export_sklearn.py,
    /// relative to the topology's folder), and what it holds; nil to start empty.
    public var initFile: String? = nil
    public var initial: ImportedModel? = nil

    public init(
        name: String, role: Role = .active, weight: Double = 1, canaryShare: Double? = nil,
        features: [String]? = nil, seed: UInt64 = 0, replaces: [String]? = nil, group: String? = nil, kind: Kind
    ) {
        self.name = name
        self.role = role
        self.weight = weight
        self.canaryShare = canaryShare
        self.features = features
        self.seed = seed
        self.replaces = replaces
        self.group = group
        self.kind = kind
    }

    /// How a model's scores are used.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// Scores feed the ensemble and the alerts.
        case active
        /// Scored, learning and measured on every event, never alerting: a challenger to compare
        /// before promotion, or a demoted model kept warm for a rollback.
        case shadow
        /// Active for a hash-selected share of entities only.
        case canary
    }

    /// The model algorithms, one per `kind:` tag.
    public enum Kind: Sendable, Hashable {
        case isolationForest(IsolationForestSpec)
        /// The forest that keeps no events, only decayed counts per node (Leveni et al.); the
        /// same parameters as `isolationForest`. docs/models.md compares the two.
        case countingIsolationForest(IsolationForestSpec)
        case logisticRegression(LogisticRegressionSpec)

        /// The `kind:` tag.
        public var tag: Tag {
            switch self {
            case .isolationForest: return .isolationForest
            case .countingIsolationForest: return .countingIsolationForest
            case .logisticRegression: return .logisticRegression
            }
        }

        /// Labels this model learns from, if any.
        public var labels: LabelSource? {
            if case .logisticRegression(let spec) = self { return spec.labels }
            return nil
        }
    }

    /// The `kind:` tags.
    public enum Tag: String, Sendable, Hashable, CaseIterable {
        case isolationForest = "isolation_forest"
        case countingIsolationForest = "counting_isolation_forest"
        case logisticRegression = "logistic_regression"
    }
}

/// Parameters of the streaming isolation forest (unsupervised: learns from every event).
public struct IsolationForestSpec: Sendable, Hashable {
    /// Key `trees` (default 100, 1...1000).
    public var trees: Int
    /// Events each tree is built from. Key `sample` (default 256, 16...4096).
    public var sample: Int
    /// How far back the forest remembers: it forgets events older than about this many. Key
    /// `window_events` (default 10 × sample, at least `sample`).
    public var windowEvents: Int

    public init(trees: Int = 100, sample: Int = 256, windowEvents: Int? = nil) {
        self.trees = trees
        self.sample = sample
        self.windowEvents = windowEvents ?? max(sample, 10 * sample)
    }
}

/// Parameters of the streaming logistic regression (supervised: learns from delayed labels).
public struct LogisticRegressionSpec: Sendable, Hashable {
    /// Key `optimizer` (default `ftrl`).
    public var optimizer: Optimizer
    /// Key `learning_rate` (default 0.2, > 0; measured best of 0.02–1.0 for both optimizers on
    /// Phishing and the synthetic stream, docs/models.md).
    public var learningRate: Double
    /// Key `l1` (default 0, ≥ 0): sparsity.
    public var l1: Double
    /// Key `l2` (default 0.001, ≥ 0): shrinkage.
    public var l2: Double
    /// Weight of a positive (fraud) example relative to a negative one. Key `positive_weight`
    /// (default 1, > 0); raise it for rare fraud.
    public var positiveWeight: Double
    /// Where the labels come from. Key `labels` (required).
    public var labels: LabelSource

    public init(
        optimizer: Optimizer = .ftrl, learningRate: Double = 0.2, l1: Double = 0, l2: Double = 0.001,
        positiveWeight: Double = 1, labels: LabelSource
    ) {
        self.optimizer = optimizer
        self.learningRate = learningRate
        self.l1 = l1
        self.l2 = l2
        self.positiveWeight = positiveWeight
        self.labels = labels
    }

    /// Online optimisers for the weights.
    public enum Optimizer: String, Sendable, Hashable, CaseIterable {
        /// FTRL-Proximal (McMahan et al.): per-coordinate rates, true L1 sparsity.
        case ftrl
        /// AdaGrad SGD.
        case adagrad
    }
}

/// A delayed ground-truth stream: label records joined to recent events by event id.
public struct LabelSource: Sendable, Hashable {
    /// Kafka topic carrying the labels. Key `topic` (required).
    public var topic: String
    /// Field of a label record holding the event id. Key `key` (default `id`).
    public var key: String
    /// Field of a label record holding the label (true / 1 = fraud). Key `field` (default `label`).
    public var field: String
    /// How long an event waits for its label before it is forgotten. Key `expire` (default 1h,
    /// 1s...7d).
    public var expire: Duration

    public init(topic: String, key: String = "id", field: String = "label", expire: Duration = .seconds(3600)) {
        self.topic = topic
        self.key = key
        self.field = field
        self.expire = expire
    }
}
