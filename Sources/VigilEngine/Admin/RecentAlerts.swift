import Synchronization

/// The last alerts the broker acknowledged, newest first, for `/status` and the status page: what
/// an analyst looks at first, without a Kafka consumer at hand. Written by the producer's delivery
/// thread, read by the admin endpoint.
final class RecentAlerts: Sendable {
    /// Alerts kept.
    static let capacity = 20
    private let ring = Mutex<(items: [[UInt8]], next: Int)>(([], 0))

    func record(_ alert: AlertRecord) {
        ring.withLock { r in
            if r.items.count < Self.capacity {
                r.items.append(alert.json)
            } else {
                r.items[r.next] = alert.json
            }
            r.next = (r.next + 1) % Self.capacity
        }
    }

    /// The alerts' JSON, newest first.
    var newestFirst: [[UInt8]] {
        ring.withLock { r in
            guard r.items.count == Self.capacity else { return r.items.reversed() }
            return Array((r.items[r.next...] + r.items[..<r.next]).reversed())
        }
    }
}
