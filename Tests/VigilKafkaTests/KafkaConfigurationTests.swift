import Synchronization
import Testing
import VigilKafka

@Suite struct KafkaConfigurationTests {
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

    @Test func anInvalidPropertyNamesItselfButNotASecretValue() {
        let bad = KafkaConfiguration(bootstrapServers: ["127.0.0.1:9092"], properties: ["no.such.property": "1"])
        #expect {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(common: bad))
        } throws: { error in
            let e = error as? KafkaError
            return e?.code == .invalidConfiguration && e?.reason.contains("no.such.property") == true
        }
        let secret = KafkaConfiguration(bootstrapServers: ["127.0.0.1:9092"], properties: ["sasl.password.bogus": "hunter2"])
        #expect {
            _ = try KafkaProducer(configuration: KafkaProducerConfiguration(common: secret))
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

    /// A broker that is not there: the producer reports it through onError and fails the
    /// message after message.timeout.ms, without crashing. Uses a closed loopback port.
    @Test(.timeLimit(.minutes(1))) func anUnreachableBrokerIsReportedNotFatal() throws {
        let errors = Mutex<[KafkaError]>([])
        let reports = Mutex<[DeliveryReport]>([])
        var config = KafkaProducerConfiguration(common: KafkaConfiguration(bootstrapServers: ["127.0.0.1:1"]))
        config.messageTimeout = .seconds(1)
        let producer = try KafkaProducer(
            configuration: config,
            onDelivery: { report in reports.withLock { $0.append(report) } },
            onError: { error in errors.withLock { $0.append(error) } })
        try producer.send(topic: "nowhere", key: nil, value: Array("x".utf8), token: 77)
        try producer.flush(timeout: .seconds(10))
        #expect(producer.failedCount == 1)
        #expect(producer.deliveredCount == 0)
        let report = try #require(reports.withLock { $0.first })
        #expect(report.token == 77)
        #expect(report.error?.code == .deliveryFailed || report.error?.code == .timedOut)
        #expect(errors.withLock { $0.contains { $0.code == .brokerUnavailable && $0.isRetriable } })
    }
}
