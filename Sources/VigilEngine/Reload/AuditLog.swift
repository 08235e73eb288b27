import Foundation
import Logging
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
/// audit topic (keyed by topology name).
final class AuditLog: Sendable {
    let topic: String?
    let producer: KafkaProducer
    let logger: Logger

    init(topic: String?, producer: KafkaProducer, logger: Logger) {
        self.topic = topic
        self.producer = producer
        self.logger = logger
    }

    func record(_ outcome: ReloadOutcome) {
        let json = outcome.json
        let level: Logger.Level = outcome.result == .applied || outcome.result == .unchanged ? .notice : .warning
        logger.log(level: level, "Audit: configuration \(outcome.result.rawValue)", metadata: ["audit": "\(json)"])
        guard let topic else { return }
        do {
            try producer.send(topic: topic, key: Array(outcome.topology.utf8), value: Array(json.utf8))
        } catch {
            logger.error("Audit record not sent to \(topic)", metadata: ["error": "\(error)"])
        }
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
        guard let topic else { return }
        do {
            try producer.send(topic: topic, key: Array(topology.utf8), value: Array(json.utf8))
        } catch {
            logger.error("Audit record not sent to \(topic)", metadata: ["error": "\(error)"])
        }
    }
}
