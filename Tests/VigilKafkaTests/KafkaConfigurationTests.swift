import InMemoryLogging
import Logging
import Synchronization
import Testing
import VigilKafka
import VigilTestKit

@Suite(.ownThread) struct KafkaConfigurationTests {
    @Test func secretsAreRedactedInDescriptions() {
        let config = KafkaConfiguration(
            bootstrapServers: ["127.0.0.1:9092"],
            properties: ["sasl.password": "hunter2", "ssl.key.password": "k", "sasl.username": "vigil"])
        let text = config.description
        #expect(!text.contains("hunter2"))
        #expect(text.contains("sasl.password=[redacted]"))
        #expect(text.contains("ssl.key.password=[redacted]"))
        #expect(text.contains("sasl.username=vigil"))
        #expect(text.contains("bootstrap.servers=127.0.0.1:9092"))
    }

    @Test func anUnknownPropertyIsAClearErrorThatNamesIt() {
        let bad = KafkaConfiguration(bootstrapServers: ["127.0.0.1:9092"], properties: ["no.such.property": "1"])
        #expect {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(common: bad), logger: .quiet)
        } throws: { error in
            let e = error as? KafkaError
            return e?.code == .invalidConfiguration
                && e?.reason
                    == "librdkafka property no.such.property=1: No such configuration property: \"no.such.property\""
        }
        #expect {
            _ = try KafkaConsumer(configuration: KafkaConsumerConfiguration(common: bad, groupID: "g"), logger: .quiet)
        } throws: { ($0 as? KafkaError)?.code == .invalidConfiguration }
    }

    @Test func anInvalidSecretValueIsNotEchoed() {
        let secret = KafkaConfiguration(
            bootstrapServers: ["127.0.0.1:9092"], properties: ["sasl.password.bogus": "hunter2"])
        #expect {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(common: secret), logger: .quiet)
        } throws: { error in
            let reason = (error as? KafkaError)?.reason ?? ""
            return reason.contains("[redacted]") && !reason.contains("hunter2")
        }
    }

    @Test func theLinkedLibraryIsNewEnough() throws {
        try KafkaRuntime.checkVersion()
        #expect(KafkaRuntime.version >= KafkaRuntime.minimumVersion)
        #expect(KafkaRuntime.versionString.hasPrefix("2."))
    }

    /// An unreachable bootstrap address (a closed loopback port): the producer reports it as a
    /// retriable error event, librdkafka's own log lines reach swift-log, and the record fails
    /// after message.timeout.ms with its token. Nothing crashes.
    @Test(.timeLimit(.minutes(10))) func anUnreachableBrokerIsReportedAndLogged() throws {
        let errors = Mutex<[KafkaError]>([])
        let reports = Mutex<[DeliveryReport]>([])
        let logs = InMemoryLogHandler()
        var config = KafkaProducerConfiguration(common: KafkaConfiguration(bootstrapServers: ["127.0.0.1:1"]))
        config.messageTimeout = .seconds(1)
        let producer = try KafkaProducer(
            configuration: config, logger: Logger(label: "test") { _ in logs },
            onDelivery: { report in reports.withLock { $0.append(report) } },
            onEvent: { event in if case .error(let e) = event { errors.withLock { $0.append(e) } } })
        try producer.send(topic: "nowhere", key: nil, value: Array("x".utf8), token: 77)
        try producer.flush(timeout: .seconds(10))
        #expect(producer.failedCount == 1)
        #expect(producer.deliveredCount == 0)
        let report = try #require(reports.withLock { $0.first })
        #expect(report.token == 77)
        #expect(report.error?.code == .deliveryFailed || report.error?.code == .timedOut)
        #expect(errors.withLock { $0.contains { $0.code == .brokerUnavailable && $0.isRetriable } })
        #expect(logs.entries.contains { "\($0.message)".contains("127.0.0.1:1") && $0.level >= .warning })
    }

    @Test(.timeLimit(.minutes(10))) func metadataFromAnUnreachableBrokerFailsClearly() throws {
        let admin = try KafkaAdmin(configuration: KafkaConfiguration(bootstrapServers: ["127.0.0.1:1"]), logger: .quiet)
        #expect {
            _ = try admin.metadata(timeout: .seconds(2))
        } throws: { error in
            let e = error as? KafkaError
            return (e?.code == .brokerUnavailable || e?.code == .timedOut) && e?.isRetriable == true
                && e?.reason.hasPrefix("metadata request") == true
        }
    }
}
