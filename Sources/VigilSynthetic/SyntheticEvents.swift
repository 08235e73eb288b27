import VigilCore

/// The synthetic card-payment stream (`TransactionStream`) as the JSON events and labels that
/// `topologies/card-payments.yaml` reads: what `vigil generate` writes, and what tests,
/// benchmarks and the demo feed the engine.
///
/// Events: `{"txn_id","card_id","ts" (epoch ms),"amount","merchant_id","merchant_category",
/// "country","channel"}`, with `"device_id"` when the stream has devices. Labels:
/// `{"txn_id","is_fraud","ts"}`, where `ts` is when the label became known; labels are emitted
/// interleaved with the events in time order.
public struct SyntheticEvents: Sequence, IteratorProtocol {
    /// One emitted record.
    public enum Record: Sendable {
        /// An event, with its card id (the record key that keeps one card's events in order).
        case event(id: String, card: String, json: [UInt8])
        case label(id: String, json: [UInt8])
    }

    private var stream: TransactionStream
    private var queue: [Record] = []
    private var queueHead = 0
    private var finished = false

    public init(_ config: TransactionStream.Config) { stream = TransactionStream(config) }

    /// The next event or label, in time order; labels still due when the events run out follow
    /// at the end.
    public mutating func next() -> Record? {
        if queueHead < queue.count {
            defer { queueHead += 1 }
            return queue[queueHead]
        }
        queue.removeAll(keepingCapacity: true)
        queueHead = 0
        if let t = stream.next() {
            for label in stream.labels(availableBy: t.time) {
                queue.append(.label(id: label.id, json: Self.json(label)))
            }
            queue.append(.event(id: t.id, card: t.card, json: Self.json(t)))
        } else if !finished {
            finished = true
            for label in stream.remainingLabels() { queue.append(.label(id: label.id, json: Self.json(label))) }
        }
        guard !queue.isEmpty else { return nil }
        queueHead = 1
        return queue[0]
    }

    /// The event's JSON; whether it was fraud is only in its label.
    public static func json(_ t: TransactionStream.Transaction) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(190)
        out += #"{"txn_id":"\#(t.id)","card_id":"\#(t.card)","ts":\#(t.time),"amount":"#.utf8
        let cents = Int64((t.amount * 100).rounded())
        let fraction = cents % 100
        out += "\(cents / 100).\(fraction < 10 ? "0" : "")\(fraction)".utf8
        out +=
            #","merchant_id":"\#(t.merchantId)","merchant_category":"\#(t.merchantCategory)","country":"\#(t.country)","channel":"\#(t.channel)""#
            .utf8
        if let device = t.deviceId { out += #","device_id":"\#(device)""#.utf8 }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// The label's JSON.
    public static func json(_ label: TransactionStream.Label) -> [UInt8] {
        Array(#"{"txn_id":"\#(label.id)","is_fraud":\#(label.isFraud),"ts":\#(label.availableAt)}"#.utf8)
    }
}
