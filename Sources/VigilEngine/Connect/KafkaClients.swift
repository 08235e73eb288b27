import Foundation
import Logging
import VigilKafka

/// The one Kafka client configuration of a topology. Every client Vigil makes for it (the source
/// consumer, the output, checkpoint and audit producers, the admin client and the checkpoint
/// reader) starts from it, so a cluster that asks for TLS or SASL gets them from all of them.
///
/// `source.kafka.properties` go to every client; `source.kafka.consumer_properties` to the source
/// consumer only (librdkafka warns about consumer properties given to a producer), and
/// `source.kafka.producer_properties` to the outputs producer only. Secret
/// references (`${NAME}`, `*_file` keys: `SecretProperties`) are resolved here, once.
public struct KafkaClients: Sendable {
    /// `bootstrap.servers`.
    public let brokers: [String]
    /// The topology's name: client ids are `vigil-<topology>-<role>`.
    public let topology: String
    /// Properties of every client, resolved.
    let properties: [String: String]
    /// Properties of the source consumer only, resolved (applied over `properties`).
    let consumerProperties: [String: String]
    /// Properties of the outputs producer only, resolved (applied over `properties`).
    let producerProperties: [String: String]

    /// - Parameters:
    ///   - brokers: overrides `source.kafka.brokers` (`--brokers`).
    ///   - environment: what `${NAME}` reads.
    /// - Throws: `EngineError(.kafkaFailed)` when a secret reference does not resolve.
    public init(
        topology: Topology, brokers: [String]? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(EngineError) {
        self.brokers = brokers ?? topology.source.kafka.brokers
        self.topology = topology.name
        properties = try SecretProperties.resolve(topology.source.kafka.properties, environment: environment)
        consumerProperties = try SecretProperties.resolve(
            topology.source.kafka.consumerProperties, environment: environment)
        producerProperties = try SecretProperties.resolve(
            topology.source.kafka.producerProperties, environment: environment)
    }

    /// Settings for tools given an address and properties rather than a topology (`vigil doctor`,
    /// `vigil generate`); `name` takes the topology's place in client ids.
    public init(
        brokers: [String], name: String, properties: [String: String] = [:],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(EngineError) {
        self.brokers = brokers
        topology = name
        self.properties = try SecretProperties.resolve(properties, environment: environment)
        consumerProperties = [:]
        producerProperties = [:]
    }

    /// Settings of a client with id `vigil-<topology>-<role>`.
    public func common(_ role: String) -> KafkaConfiguration {
        KafkaConfiguration(bootstrapServers: brokers, clientID: "vigil-\(topology)-\(role)", properties: properties)
    }

    /// A consumer of group `group`, with the consumer-only properties too.
    public func consumer(_ role: String, group: String) -> KafkaConsumerConfiguration {
        var common = common(role)
        common.properties.merge(consumerProperties) { $1 }
        return KafkaConsumerConfiguration(common: common, groupID: group)
    }

    /// A producer.
    public func producer(_ role: String) -> KafkaProducerConfiguration {
        KafkaProducerConfiguration(common: common(role))
    }

    /// The producer of alerts, dead letters and scores: a linger of 5 ms (chosen by
    /// bench/producer-settings.sh, docs/kafka.md) unless the topology's `producer_properties`
    /// set `linger.ms` (or its alias `queue.buffering.max.ms`), which, like every property
    /// there, apply over `properties`.
    public func outputsProducer() -> KafkaProducerConfiguration {
        var common = common("outputs")
        common.properties.merge(producerProperties) { $1 }
        var configuration = KafkaProducerConfiguration(common: common)
        configuration.linger = .milliseconds(5)
        return configuration
    }

    /// An admin client (metadata, topic creation).
    public func admin(logger: Logger) throws(KafkaError) -> KafkaAdmin {
        try KafkaAdmin(configuration: common("admin"), logger: logger)
    }

    /// Whether the clients talk TLS (`security.protocol` `ssl` or `sasl_ssl`), for the log.
    public var securityProtocol: String { properties["security.protocol"]?.lowercased() ?? "plaintext" }
}
