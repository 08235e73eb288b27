import Foundation
import Logging
import Synchronization
import VigilKafka

/// What became of one configuration change (boot, file edit, SIGHUP, admin request): applied,
/// refused (needs a restart, or could not be applied), invalid, or no change at all.
public struct ReloadOutcome: Sendable {
    /// Who asked for the change.
    public enum Source: String, Sendable {
        case boot, file, signal, admin
    }

    /// What happened.
    public enum Result: String, Sendable {
        case applied, refused, invalid, unchanged
    }

    public var source: Source
    public var result: Result
    public var change: TopologyChange
    public var reason: String
    public var topology: String
    public var time = Date()

    /// The audit record: one JSON object (docs/operations.md, "Audit records").
    public var json: String {
        var o: [String: Any] = [
            "time": ISO8601DateFormatter().string(from: time), "topology": topology, "source": source.rawValue,
            "outcome": result.rawValue, "reason": reason,
            "changes": change.items.map { ["path": $0.path, "kind": $0.kind.rawValue, "from": $0.old, "to": $0.new] },
        ]
        if let kind = change.kind { o["change"] = kind.rawValue }
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// Writes every applied or refused change to the log and, when the topology names one, to the
/// audit topic (keyed by topology name). A record is acknowledged by the broker before `record`
/// returns: a promotion answered, then a crash, still leaves its record. So the records go
/// through a producer of their own, made at the first one, whose flush waits for them alone
/// (the outputs' producer never empties under load).
final class AuditLog: Sendable {
    let topic: String?
    let clients: KafkaClients
    let logger: Logger
    private let producer = Mutex<KafkaProducer?>(nil)

    init(topic: String?, clients: KafkaClients, logger: Logger) {
        self.topic = topic
        self.clients = clients
        self.logger = logger
    }

    /// Publishes one record and waits (10 s at most) for the broker's acknowledgement.
    private func publish(_ json: String, key: String) {
        guard let topic else { return }
        do {
            try producer.withLock { p throws(KafkaError) in
                if p == nil {
                    var configuration = clients.producer("audit")
                    configuration.linger = .zero
                    p = try KafkaProducer(configuration: configuration, logger: logger)
                }
                try p!.send(topic: topic, key: Array(key.utf8), value: Array(json.utf8))
                try p!.flush(timeout: .seconds(10))
            }
        } catch {
            logger.error("Audit record not acknowledged by \(topic)", metadata: ["error": "\(error)"])
        }
    }

    /// Closes the producer (flushing what is left).
    func close() {
        let p = producer.withLock { p in
            let taken = p
            p = nil
            return taken
        }
        try? p?.close(deadline: .seconds(5))
    }

    func record(_ outcome: ReloadOutcome) {
        let json = outcome.json
        let level: Logger.Level = outcome.result == .applied || outcome.result == .unchanged ? .notice : .warning
        logger.log(level: level, "Audit: configuration \(outcome.result.rawValue)", metadata: ["audit": "\(json)"])
        publish(json, key: outcome.topology)
    }

    /// Records a promotion or rollback (docs/operations.md, "Audit records"): `kind` is
    /// `rollout`, with the event's fields.
    func record(_ event: RolloutEvent, topology: String) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        var o = (try? JSONSerialization.jsonObject(with: encoder.encode(event))) as? [String: Any] ?? [:]
        o["kind"] = "rollout"
        o["topology"] = topology
        o["time"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(event.timeMs) / 1000))
        let data = (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data("{}".utf8)
        let json = String(decoding: data, as: UTF8.self)
        logger.notice("Audit: rollout \(event.action.rawValue)", metadata: ["audit": "\(json)"])
        publish(json, key: topology)
    }
}
