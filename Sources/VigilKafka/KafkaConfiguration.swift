/// Settings shared by every Vigil Kafka client: typed for what Vigil relies on, plus a
/// pass-through of any librdkafka property, applied last so users can override anything.
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// `bootstrap.servers`, as `host:port` strings.
    public var bootstrapServers: [String]
    /// `client.id`, shown in broker logs.
    public var clientID: String = "vigil"
    /// Any other librdkafka property (see librdkafka's CONFIGURATION.md), by its own name.
    public var properties: [String: String] = [:]

    public init(bootstrapServers: [String], clientID: String = "vigil", properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.clientID = clientID
        self.properties = properties
    }

    /// The properties handed to librdkafka: typed settings first, pass-through last.
    func librdkafkaProperties(_ typed: [(String, String)]) -> [(String, String)] {
        var out: [(String, String)] = [
            ("bootstrap.servers", bootstrapServers.joined(separator: ",")), ("client.id", clientID),
        ]
        out += typed
        out += properties.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        return out
    }

    /// Property names whose values never appear in logs or descriptions.
    public static func isSecret(_ name: String) -> Bool {
        let n = name.lowercased()
        return n.contains("password") || n.contains("secret") || n.hasSuffix(".pem") || n.hasSuffix(".key")
            || n.contains("oauthbearer.config") || n.contains("jaas")
    }

    /// The configuration with secret values replaced by `[redacted]`.
    public var description: String {
        let props = librdkafkaProperties([]).map { "\($0.0)=\(Self.isSecret($0.0) ? "[redacted]" : $0.1)" }
        return "KafkaConfiguration(\(props.joined(separator: ", ")))"
    }
}

/// A consumer-group consumer's settings. Defaults follow what was measured against the local
/// broker: a 6 s session makes a group join take ~3 s instead of 22 s, and 10 ms fetch waits
/// keep end-to-end p99 near 12 ms.
public struct KafkaConsumerConfiguration: Sendable {
    public var common: KafkaConfiguration
    /// `group.id`.
    public var groupID: String
    /// Where a group with no committed offset starts.
    public var startFrom: StartFrom = .earliest
    /// `session.timeout.ms`.
    public var sessionTimeout: Duration = .seconds(6)
    /// `heartbeat.interval.ms`.
    public var heartbeatInterval: Duration = .seconds(1)
    /// `fetch.wait.max.ms`.
    public var fetchWaitMax: Duration = .milliseconds(10)
    /// `partition.assignment.strategy`.
    public var assignmentStrategy: AssignmentStrategy = .eager
    /// How often `run` commits done offsets (Vigil's own timer; auto-commit stays off).
    public var commitInterval: Duration = .seconds(1)
    /// `statistics.interval.ms`: statistics events and metrics (consumer lag) this often; nil = off.
    public var statisticsInterval: Duration? = nil

    public init(common: KafkaConfiguration, groupID: String) {
        self.common = common
        self.groupID = groupID
    }

    /// `auto.offset.reset`.
    public enum StartFrom: String, Sendable, CaseIterable {
        case earliest, latest
    }

    /// How partitions move between members on a rebalance.
    public enum AssignmentStrategy: String, Sendable, CaseIterable {
        /// `range,roundrobin`: every member gives up everything, then all are reassigned.
        case eager = "range,roundrobin"
        /// `cooperative-sticky`: only the partitions that move are revoked.
        case cooperativeSticky = "cooperative-sticky"
    }

    var properties: [(String, String)] {
        common.librdkafkaProperties([
            ("group.id", groupID),
            ("auto.offset.reset", startFrom.rawValue),
            ("session.timeout.ms", String(sessionTimeout.milliseconds)),
            ("heartbeat.interval.ms", String(heartbeatInterval.milliseconds)),
            ("fetch.wait.max.ms", String(fetchWaitMax.milliseconds)),
            // A full local queue otherwise stalls the consumer for a whole second.
            ("fetch.queue.backoff.ms", "10"),
            // Offsets are committed by Vigil once an event's effects are acknowledged, never on a timer.
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
            ("partition.assignment.strategy", assignmentStrategy.rawValue),
            ("statistics.interval.ms", String(statisticsInterval?.milliseconds ?? 0)),
        ])
    }
}

/// A producer's settings.
public struct KafkaProducerConfiguration: Sendable {
    public var common: KafkaConfiguration
    /// `linger.ms`: how long a batch waits for more messages.
    public var linger: Duration = .milliseconds(5)
    /// `enable.idempotence`.
    public var idempotence: Bool = false
    /// `message.timeout.ms`: a message not acknowledged by then fails with a delivery error.
    public var messageTimeout: Duration = .seconds(30)
    /// `compression.codec`.
    public var compression: String = "lz4"
    /// `queue.buffering.max.messages`: the bound of the local queue; when it is full `send`
    /// waits for room (backpressure) instead of growing memory.
    public var queueMaxMessages: Int = 100_000
    /// `queue.buffering.max.kbytes`, the same bound in bytes.
    public var queueMaxBytes: Int = 64 << 20
    /// `statistics.interval.ms`; nil = off.
    public var statisticsInterval: Duration? = nil

    public init(common: KafkaConfiguration) { self.common = common }

    var properties: [(String, String)] {
        common.librdkafkaProperties([
            ("linger.ms", String(linger.milliseconds)),
            ("enable.idempotence", idempotence ? "true" : "false"),
            ("message.timeout.ms", String(messageTimeout.milliseconds)),
            ("compression.codec", compression),
            ("acks", "all"),
            ("queue.buffering.max.messages", String(queueMaxMessages)),
            ("queue.buffering.max.kbytes", String(max(1, queueMaxBytes / 1024))),
            ("statistics.interval.ms", String(statisticsInterval?.milliseconds ?? 0)),
        ])
    }
}

extension Duration {
    var milliseconds: Int64 {
        let (s, atto) = components
        return s * 1000 + atto / 1_000_000_000_000_000
    }
}
