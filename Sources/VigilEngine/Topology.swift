import VigilCore
import VigilFeatures
import VigilModels

/// A whole pipeline as an operator declares it in a topology file: where events come from, what
/// they contain, the features and models, how alerts are decided and where everything goes.
public struct Topology: Sendable {
    /// Names the topology in alerts, metrics and checkpoints. Key `name` (required; letters,
    /// digits, `-` and `_`).
    public var name: String
    /// Key `description` (optional, free text).
    public var description: String?
    /// Key `source` (required).
    public var source: SourceSpec
    /// Key `fields` (required).
    public var schema: Schema
    /// Key `features` (required, at least one).
    public var features: [FeatureSpec]
    /// Limits of per-entity state. Key `state` (optional).
    public var state: StateSpec = StateSpec()
    /// Key `models` (required, at least one with role active).
    public var models: [ModelSpec]
    /// Key `threshold` (optional; defaults as documented).
    public var threshold: ThresholdSpec
    /// Key `alerts` (required).
    public var alerts: AlertsSpec
    /// Key `dead_letter` (required): where bad events go, so nothing is lost.
    public var deadLetter: DeadLetterSpec
    /// Key `checkpoints` (optional; without it the engine starts cold every time).
    public var checkpoints: CheckpointSpec?
    /// Key `admin` (optional; without it no HTTP endpoint is opened).
    public var admin: AdminSpec?
    /// Key `audit` (optional; without it audit records go to the log only).
    public var audit: AuditSpec? = nil
    /// Key `experiment` (optional): an A/B split of the active models by entity.
    public var experiment: ExperimentSpec? = nil
    /// Key `drift` (optional; without it no drift is watched).
    public var drift: DriftSpec? = nil
    /// Key `guard` (optional; without it challengers are promoted and rolled back by command
    /// only).
    public var rolloutGuard: GuardSpec? = nil
    /// Key `federation` (optional; without it each instance's models learn alone).
    public var federation: FederationSpec? = nil
    /// Event fields to break quality and fairness figures down by. Key `segments` (optional;
    /// `vigil evaluate` uses them when given no `--segment`; docs/evaluate.md).
    public var segments: [String] = []
    /// Key `ensemble` (optional): how the models' scores are combined.
    public var ensemble = EnsembleSpec()
    /// Roles decided at run time by promotions and rollbacks (not a key of the file: the engine
    /// sets it from its checkpoints and its `models` commands).
    public internal(set) var rollout: RolloutOverride? = nil
    /// The SHA-256 (hex) of the file's canonical form (`TopologyHash`): what run manifests and
    /// alerts name the configuration by. nil for a topology built in code.
    public internal(set) var configHash: String? = nil
}

extension Topology {
    /// Every topic this topology reads or writes, in a stable order: sources, labels, alerts,
    /// dead letters, checkpoints.
    public var topics: [String] {
        var out = source.kafka.topics
        out += models.compactMap { $0.kind.labels?.topic }
        out += [alerts.topic, deadLetter.topic]
        if let checkpoints { out.append(checkpoints.topic) }
        if let audit { out.append(audit.topic) }
        if let drift { out.append(drift.topic) }
        if let federation { out.append(federation.topic) }
        var seen = Set<String>()
        return out.filter { seen.insert($0).inserted }
    }
}

/// Where events come from and how to read them. Key `source`.
public struct SourceSpec: Sendable, Hashable {
    /// Key `kafka` (required).
    public var kafka: KafkaSourceSpec
    /// Payload encoding. Key `format` (default `json`).
    public var format: Format
    /// Field holding the entity key that events are routed and windowed by. Key `key` (required).
    public var key: String
    /// Field holding the event's unique id, used in alerts and to join labels. Key `id` (optional;
    /// without it the source position identifies the event).
    public var id: String?
    /// Event time. Key `time` (optional; without it events are timed on arrival).
    public var time: EventTimeSpec?
    /// Larger events go to the dead letters unread. Key `max_event_bytes` (default 65536,
    /// 64...16777216).
    public var maxEventBytes: Int = 65_536

    /// Payload encodings.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case json
    }
}

/// The Kafka side of a source. Key `source.kafka`.
public struct KafkaSourceSpec: Sendable, Hashable {
    /// `host:port` list. Key `brokers` (required; a list or a comma-separated string).
    public var brokers: [String]
    /// Key `topics` (required; a list or a single name).
    public var topics: [String]
    /// Consumer group; instances with the same group share the partitions. Key `group` (required).
    public var group: String
    /// Where a new group starts. Key `start_from` (default `latest`).
    public var startFrom: StartFrom
    /// librdkafka properties of every client Vigil makes (consumer, producers, admin, checkpoint
    /// reader): TLS, SASL and any tuning. Values may hold `${ENV}` references and keys may end in
    /// `_file` (`SecretProperties`). Key `properties` (mapping of strings).
    public var properties: [String: String]
    /// librdkafka properties of the source consumer only (fetch and session tuning). Key
    /// `consumer_properties` (mapping of strings).
    public var consumerProperties: [String: String] = [:]
    /// librdkafka properties of the outputs producer only (alerts, dead letters, scores): its
    /// batching (`linger.ms`, `batch.num.messages`). Key `producer_properties` (mapping of strings).
    public var producerProperties: [String: String] = [:]
    /// Create every topic the topology names that does not exist yet, at start. Key
    /// `create_topics` (default false).
    public var createTopics: Bool = false
    /// Partitions of topics Vigil creates. Key `partitions` (default 4, 1...10000).
    public var partitions: Int = 4
    /// How partitions move between the instances of the group. Key `assignment` (default
    /// `cooperative_sticky`: only the partitions that move are revoked, and only their windows
    /// are handed off).
    public var assignment: Assignment = .cooperativeSticky

    /// Kafka's partition assignment strategies Vigil offers.
    public enum Assignment: String, Sendable, Hashable, CaseIterable {
        /// `cooperative-sticky`: incremental rebalances.
        case cooperativeSticky = "cooperative_sticky"
        /// `range,roundrobin`: every member gives up all its partitions at each rebalance.
        case eager
    }

    /// Starting positions for a group without committed offsets.
    public enum StartFrom: String, Sendable, Hashable, CaseIterable {
        case earliest, latest
    }
}

/// How event time is read. Key `source.time`: a field name, or a mapping.
public struct EventTimeSpec: Sendable, Hashable {
    /// Key `field` (required): a declared field of type timestamp or number.
    public var field: String
    /// Key `format` (default `auto`: RFC 3339 strings, or epoch numbers in ms or s by magnitude).
    public var format: Format
    /// How far behind the newest event time an event may arrive and still update state. Key
    /// `allowed_lateness` (default 30s, 0s...1d).
    public var allowedLateness: Duration
    /// What happens to an event later than that. Key `late` (default `score_only`).
    public var late: LatePolicy
    /// What happens to an event without a usable time. Key `missing` (default `arrival_time`).
    public var missing: MissingPolicy
    /// How far an event time may be ahead of its record's broker timestamp (without one, of the
    /// second newest event time read so far) before one event could move the clocks that
    /// lateness and label expiry go by. Key `max_future` (default 1h, 0s...365d).
    public var maxFuture: Duration = .seconds(3600)
    /// What happens to an event further ahead than that. Key `future` (default `dead_letter`).
    public var future: FuturePolicy = .deadLetter

    /// Encodings of event time.
    public enum Format: String, Sendable, Hashable, CaseIterable {
        case auto, rfc3339
        case unixSeconds = "unix_s"
        case unixMilliseconds = "unix_ms"
    }

    /// Handling of events later than the allowed lateness.
    public enum LatePolicy: String, Sendable, Hashable, CaseIterable {
        /// Scored against current state without updating it.
        case scoreOnly = "score_only"
        /// Sent to the dead-letter topic.
        case deadLetter = "dead_letter"
    }

    /// Handling of events whose time is too far ahead.
    public enum FuturePolicy: String, Sendable, Hashable, CaseIterable {
        /// Sent to the dead-letter topic (reason `future_time`).
        case deadLetter = "dead_letter"
        /// Timed by the record's broker timestamp (its arrival) instead.
        case arrivalTime = "arrival_time"
    }

    /// Handling of events with no usable time.
    public enum MissingPolicy: String, Sendable, Hashable, CaseIterable {
        /// Timed by their arrival.
        case arrivalTime = "arrival_time"
        /// Sent to the dead-letter topic.
        case deadLetter = "dead_letter"
    }
}

/// Where alerts go. Key `alerts`.
public struct AlertsSpec: Sendable, Hashable {
    /// Key `topic` (required).
    public var topic: String
    /// Top contributing features listed in each alert. Key `explain` (default 3, 0...20).
    public var explain: Int

    public init(topic: String, explain: Int = 3) {
        self.topic = topic
        self.explain = explain
    }
}

/// Where events that cannot be processed go, with the reason. Key `dead_letter`.
public struct DeadLetterSpec: Sendable, Hashable {
    /// Key `topic` (required).
    public var topic: String

    public init(topic: String) { self.topic = topic }
}

/// Periodic snapshots of all state with the source offsets they cover. Key `checkpoints`.
public struct CheckpointSpec: Sendable, Hashable {
    /// Compacted topic the checkpoints are published to. Key `topic` (required).
    public var topic: String
    /// Key `every` (default 30s, 1s...1d).
    public var every: Duration
    /// Also checkpoint after this many events. Key `every_events` (optional, ≥ 1000).
    public var everyEvents: Int?
    /// Checkpoints kept for rollback. Key `keep` (default 5, 1...100).
    public var keep: Int
    /// Also write each checkpoint to this local directory. Key `directory` (optional).
    public var directory: String?

    public init(
        topic: String, every: Duration = .seconds(30), everyEvents: Int? = nil, keep: Int = 5, directory: String? = nil
    ) {
        self.topic = topic
        self.every = every
        self.everyEvents = everyEvents
        self.keep = keep
        self.directory = directory
    }
}

/// The admin HTTP endpoint (metrics, health, status, reload). Key `admin`.
public struct AdminSpec: Sendable, Hashable {
    /// Key `listen` (required): `host:port`, loopback unless you mean otherwise.
    public var host: String
    public var port: Int
    /// Environment variable holding the bearer token of the mutating endpoints. Key `token_env`
    /// (default `VIGIL_ADMIN_TOKEN`).
    public var tokenEnv: String = "VIGIL_ADMIN_TOKEN"
    /// File holding the token (its first line), read when the variable is not set. Key
    /// `token_file` (optional).
    public var tokenFile: String? = nil

    public init(host: String, port: Int, tokenEnv: String = "VIGIL_ADMIN_TOKEN", tokenFile: String? = nil) {
        self.host = host
        self.port = port
        self.tokenEnv = tokenEnv
        self.tokenFile = tokenFile
    }
}

/// Where every applied or refused configuration change is recorded. Key `audit`.
public struct AuditSpec: Sendable, Hashable {
    /// Key `topic` (required).
    public var topic: String

    public init(topic: String) { self.topic = topic }
}
