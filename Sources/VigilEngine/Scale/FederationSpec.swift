import VigilCore

/// Models averaged across the instances of one consumer group (`federation:`), so that each
/// instance learns from what its peers' partitions taught theirs. Every `every`, each instance
/// publishes its models' parameters to `topic` and takes the FedAvg (weights: examples learned)
/// of its own and its peers' newest. Only parameters cross instances, never events.
public struct FederationSpec: Sendable, Hashable {
    /// Key `topic` (required): the models topic, shared by the instances of the group.
    public var topic: String
    /// How often parameters are published and averaged. Key `every` (default 30s, 1s...1h).
    public var every: Duration = .seconds(30)
    /// A peer's parameters older than this are left out of the average (a stopped instance).
    /// Key `max_age` (default ten times `every`, `every`...1d: under load a round can take several
    /// times `every`, and a live peer must not drop out).
    public var maxAge: Duration

    public init(topic: String, every: Duration = .seconds(30), maxAge: Duration? = nil) {
        self.topic = topic
        self.every = every
        self.maxAge = maxAge ?? every * 10
    }

    static func decode(_ o: ConfigObject) -> FederationSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        let every = o.duration("every", in: .seconds(1) ... .seconds(3600)) ?? .seconds(30)
        let maxAge = o.duration("max_age", in: every ... .seconds(86_400))
        o.finish()
        return topic.map { FederationSpec(topic: $0, every: every, maxAge: maxAge) }
    }
}
