import ArgumentParser
import Foundation
import Logging
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilSynthetic

/// `vigil generate`: the synthetic card-payment stream with labelled fraud, to files or Kafka.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract:
            "Generate card payments with labelled fraud (the fields of topologies/card-payments.yaml), to files or to Kafka."
    )

    @Option(help: "Transactions to generate.")
    var events = 100_000

    @Option(help: "Seed: the same seed gives the same stream.")
    var seed: UInt64 = 1

    @Option(help: "Distinct cards.")
    var cards = 10_000

    @Option(help: "Events file (JSON lines; '-' for standard output).")
    var output: String?

    @Option(help: "Labels file (JSON lines): each transaction's ground truth, with the time it became known.")
    var labels: String?

    @OptionGroup(title: "Kafka (instead of files)") var brokers: BrokerOption

    @OptionGroup var log: LogOption

    @Option(help: "Topic for the events (with --brokers).")
    var topic = "payments"

    @Option(name: .customLong("labels-topic"), help: "Topic for the labels (with --brokers; omit to send none).")
    var labelsTopic: String?

    @OptionGroup var progress: ProgressOption

    @Option(help: "Events per second (with --brokers; 0 = as fast as possible).")
    var rate: Double = 0

    @Option(help: "Partition to produce every event to (with --brokers; default: by card id).")
    var partition: Int32?

    @Option(
        help: ArgumentHelp(
            "Share of transactions that start a compromised-merchant burst (dozens of cards at one merchant within minutes).",
            discussion: "0 (the default) leaves them out, and the stream is that of earlier releases."))
    var merchantFraudRate: Double = 0

    @Option(
        help: ArgumentHelp(
            "Share of transactions that start a device ring (a dozen cards paying from one device within minutes).",
            discussion: "Above 0, every event carries a device_id. 0 (the default) leaves both out."))
    var deviceRingRate: Double = 0

    @Option(
        help: ArgumentHelp(
            "Share of transactions that start a campaign in one merchant category (hundreds of cards, once each, over minutes).",
            discussion: "0 (the default) leaves them out."))
    var categoryCampaignRate: Double = 0

    @Option(
        name: .customLong("label-delay"),
        help:
            "Event time after which a transaction's label becomes known, as MIN-MAX (uniform): 5m-2h, 60s-60s; bare numbers are seconds."
    )
    var labelDelay = "300-7200"

    func validate() throws {
        if brokers.brokers == nil && output == nil {
            throw ValidationError("give --output (and --labels) or --brokers")
        }
        if brokers.brokers != nil && output != nil {
            throw ValidationError("give either --output or --brokers, not both")
        }
        if events < 0 || cards < 1 { throw ValidationError("--events must be ≥ 0 and --cards ≥ 1") }
        if !(0...0.1).contains(merchantFraudRate) { throw ValidationError("--merchant-fraud-rate must be in 0…0.1") }
        if !(0...0.1).contains(deviceRingRate) { throw ValidationError("--device-ring-rate must be in 0…0.1") }
        if !(0...0.01).contains(categoryCampaignRate) {
            throw ValidationError("--category-campaign-rate must be in 0…0.01")
        }
        if labelDelayRange == nil {
            throw ValidationError("--label-delay must be MIN-MAX with 0 ≤ MIN ≤ MAX, e.g. 5m-2h or 300-7200")
        }
    }

    private var labelDelayRange: ClosedRange<Int64>? {
        let parts = labelDelay.split(separator: "-", omittingEmptySubsequences: false).map {
            DurationArgument(argument: String($0))?.duration.wholeMilliseconds
        }
        guard parts.count == 2, let lo = parts[0], let hi = parts[1], lo <= hi else { return nil }
        return lo...hi
    }

    func run() throws {
        var config = TransactionStream.Config()
        config.events = events
        config.seed = seed
        config.cards = cards
        config.labelDelayMs = labelDelayRange!
        config.merchantFraudRate = merchantFraudRate
        config.deviceRingRate = deviceRingRate
        config.categoryCampaignRate = categoryCampaignRate
        if brokers.brokers != nil {
            log.bootstrap()
            try produce(
                config,
                clients: KafkaClients(
                    brokers: brokers.list(or: []), name: "generate", properties: brokers.propertyMap()))
        } else {
            try write(config)
        }
    }

    private func write(_ config: TransactionStream.Config) throws {
        let out = try OutputFile(output!)
        let labelOut = try labels.map { try OutputFile($0) }
        var n = 0
        var l = 0
        for record in SyntheticEvents(config) {
            switch record {
            case .event(_, _, let json):
                try out.write(json + [0x0A])
                n += 1
            case .label(_, let json):
                try labelOut?.write(json + [0x0A])
                l += 1
            }
        }
        try out.close()
        try labelOut?.close()
        printError("generate: \(n) events\(labelOut != nil ? ", \(l) labels" : "")")
    }

    private func produce(_ config: TransactionStream.Config, clients: KafkaClients) throws {
        var producerConfig = clients.producer("producer")
        producerConfig.linger = .milliseconds(5)
        let producer = try KafkaProducer(configuration: producerConfig, logger: Logger(label: "vigil.generate"))
        let events = producer.topic(topic)
        let labelTopic = labelsTopic.map { producer.topic($0) }
        let clock = ContinuousClock()
        let start = clock.now
        var sent = 0
        var labelsSent = 0
        let line = progress.line(logFormat: log.logFormat)
        var meter = RateMeter([0, 0])
        var nextShow = start.advanced(by: .seconds(1))
        func show() {
            let rates = meter.rates([sent, producer.deliveredCount])
            line?.show(
                "generate: \(grouped(sent)) events (\(grouped(Int(rates[0].rounded())))/s), \(grouped(labelsSent)) labels, "
                    + "\(grouped(producer.deliveredCount)) acknowledged (\(grouped(Int(rates[1].rounded())))/s), "
                    + "\(grouped(producer.outstanding)) waiting")
        }
        for record in SyntheticEvents(config) {
            if line != nil, rate > 0 || (sent + labelsSent) & 1023 == 0, clock.now >= nextShow {
                show()
                nextShow = clock.now.advanced(by: .seconds(1))
            }
            switch record {
            case .event(_, let card, let json):
                if rate > 0 {
                    let due = start.advanced(by: .seconds(Double(sent) / rate))
                    if due > clock.now { Thread.sleep(forTimeInterval: (due - clock.now).seconds) }
                }
                try json.withUnsafeBytes { value in
                    try Array(card.utf8).withUnsafeBytes { key in
                        try producer.send(to: events, key: key, value: value, partition: partition)
                    }
                }
                sent += 1
            case .label(_, let json):
                guard let labelTopic else { continue }
                try json.withUnsafeBytes { value in try producer.send(to: labelTopic, key: nil, value: value) }
                labelsSent += 1
            }
        }
        try producer.close(deadline: .seconds(30))
        if let line {
            if !line.redraw { show() }
            line.clear()
        }
        let seconds = (clock.now - start).seconds
        printError(
            "generate: \(sent) events to \(topic)\(labelTopic != nil ? ", \(labelsSent) labels to \(labelsTopic!)" : "") in \(String(format: "%.1f", seconds)) s"
        )
    }
}
