import Foundation
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilTestKit

/// Secret references in Kafka properties, without a broker.
@Suite(.ownThread) struct SecretPropertiesTests {
    @Test func environmentReferencesAndFileKeysResolveAndWhatIsMissingIsNamed() throws {
        let files = ["/run/secrets/password": "s3cret\n"]
        func read(_ path: String) throws -> String {
            guard let text = files[path] else { throw CocoaError(.fileNoSuchFile) }
            return text
        }
        let resolved = try SecretProperties.resolve(
            [
                "security.protocol": "sasl_ssl", "ssl.ca.location": "${TLS_DIR}/ca.pem",
                "sasl.password_file": "/run/secrets/password", "sasl.username": "$${literal}$",
            ], environment: ["TLS_DIR": "/etc/tls"], readFile: read)
        #expect(
            resolved == [
                "security.protocol": "sasl_ssl", "ssl.ca.location": "/etc/tls/ca.pem", "sasl.password": "s3cret",
                "sasl.username": "${literal}$",
            ])
        #expect(throws: EngineError.self) {
            try SecretProperties.resolve(["sasl.password": "${UNSET}"], environment: [:], readFile: read)
        }
        do {
            _ = try SecretProperties.resolve(["sasl.password_file": "/nope"], environment: [:], readFile: read)
            Issue.record("an unreadable file resolved")
        } catch {
            #expect(error.message.contains("sasl.password_file") && error.message.contains("/nope"))
        }
        #expect(throws: EngineError.self) {
            try SecretProperties.resolve(
                ["sasl.password": "inline", "sasl.password_file": "/run/secrets/password"], environment: [:],
                readFile: read)
        }
    }

    /// topologies/card-payments.yaml with `text` inserted before its line `line`.
    static func cardPayments(before line: String, inserting text: String) throws -> String {
        try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8
        )
        .replacingOccurrences(of: line, with: text + line)
    }

    @Test func everyClientGetsTheSourcePropertiesAndOnlyTheConsumerTheConsumerProperties() throws {
        let topology = try TopologyLoader.parse(
            try Self.cardPayments(
                before: "    consumer_properties:",
                inserting: "    properties: { security.protocol: ssl, ssl.ca.location: \"${CA}\" }\n"
            )
            .replacingOccurrences(of: "fetch.wait.max.ms: \"10\"", with: "fetch.wait.max.ms: \"20\""))
        let clients = try KafkaClients(topology: topology, environment: ["CA": "/tls/ca.pem"])
        for config in [clients.common("admin"), clients.producer("outputs").common] {
            #expect(config.properties == ["security.protocol": "ssl", "ssl.ca.location": "/tls/ca.pem"])
        }
        #expect(clients.consumer("source", group: "g").common.properties["fetch.wait.max.ms"] == "20")
        #expect(clients.consumer("source", group: "g").common.properties["ssl.ca.location"] == "/tls/ca.pem")
        #expect(throws: EngineError.self) { try KafkaClients(topology: topology, environment: [:]) }
    }

    @Test func producerPropertiesGoToTheOutputsProducerOnlyAndOverTheSourceProperties() throws {
        let topology = try TopologyLoader.parse(
            try Self.cardPayments(
                before: "    consumer_properties:",
                inserting: """
                        properties: { linger.ms: "7", socket.nagle.disable: "true" }
                        producer_properties: { linger.ms: "1", batch.num.messages: "${BATCH}" }

                    """))
        #expect(topology.source.kafka.producerProperties == ["linger.ms": "1", "batch.num.messages": "${BATCH}"])
        let clients = try KafkaClients(topology: topology, environment: ["BATCH": "1000"])
        let outputs = clients.outputsProducer().common.properties
        #expect(outputs == ["linger.ms": "1", "batch.num.messages": "1000", "socket.nagle.disable": "true"])
        for other in [clients.producer("checkpoints").common, clients.consumer("source", group: "g").common] {
            #expect(other.properties["batch.num.messages"] == nil && other.properties["linger.ms"] == "7")
        }
        // Without producer_properties the outputs producer keeps the measured default.
        let plain = try KafkaClients(
            topology: try TopologyLoader.load(
                path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path))
        #expect(plain.outputsProducer().common.properties.isEmpty && plain.outputsProducer().linger == .milliseconds(5))
    }
}

/// Every Kafka client of a running engine through TLS, against a broker that advertises only a
/// TLS terminator's address (stunnel in front of the local broker).
@Suite(.ownThread, .serialized) struct SecuredClientsTests {
    @Test func alertsDeadLettersAndCheckpointsGoThroughTLSToABrokerReachedOnlyOverTLS() async throws {
        // Blocking set-up (a broker, stunnel, a key pair, topics) runs off the cooperative pool.
        let tlsPort = try PrivateBroker.freePort()
        let broker = try await offPool { try PrivateBroker(advertisedPort: tlsPort) }
        let tls = try await offPool { try TLSTerminator(port: tlsPort, forwardingTo: broker.port) }
        defer {
            tls.stop()
            broker.stop()
        }
        // The CA file comes from the environment: the topology holds only the reference.
        let setup = try await offPool {
            try OperationsSetup(
                "tls", every: "1h", brokers: "127.0.0.1:\(tlsPort)",
                properties: ["security.protocol": "ssl", "ssl.ca.location": "${VIGIL_TEST_TLS_CA}"],
                environment: ["VIGIL_TEST_TLS_CA": tls.certificate])
        }

        // A client without TLS gets nowhere at the only address it is given.
        let plainFails = try await offPool {
            let plain = try KafkaAdmin(
                configuration: KafkaConfiguration(bootstrapServers: [setup.brokers], clientID: "vigil-plain"),
                logger: .silent)
            return (try? plain.metadata(timeout: .seconds(3))) == nil
        }
        #expect(plainFails)

        let n = 12_000
        let data = EngineIntegrationTests.generated(n, seed: 21)
        var events = data.events
        var cards = data.cards
        events.insert(Array("{not json".utf8), at: 500)
        cards.insert("card-bad", at: 500)
        try await offPool { [events, cards] in try setup.produce(events, keys: cards) }

        let raised = Mutex<Set<String>>([])
        let crossed = Mutex(0)
        let engine = try KafkaEngine(
            topology: try setup.topology, clients: try setup.clients, workers: 2, logger: .quiet, untilEnd: true,
            onChunk: { chunk in
                raised.withLock { $0.formUnion(chunk.allAlerts.map(\.id)) }
                crossed.withLock { c in c += (0..<chunk.count).filter { chunk.outcome($0) == .alerted }.count }
            })
        try await offPool { try engine.run() }
        #expect(engine.stats.eventsScored == n)

        // Every alert raised, one per record that crossed the threshold, is in the alerts topic,
        // read back through TLS.
        let ids = try await offPool { try setup.alertIDs() }
        let expected = raised.withLock { $0 }
        #expect(!expected.isEmpty)
        #expect(expected.count == crossed.withLock { $0 })
        #expect(Set(ids) == expected)
        let dead = try await offPool { try setup.readAll(setup.deadLetters) }
        #expect(dead.count == 1)
        // The final checkpoint was written and reads back, both through TLS.
        let stored = try await offPool { try setup.storedCheckpoints().stored }
        #expect(stored.first?.sequence == engine.lastCheckpointSequence)
    }
}
