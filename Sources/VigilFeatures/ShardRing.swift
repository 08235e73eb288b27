import Atomics

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A bounded single-producer / single-consumer lock-free ring: how ingest hands batches to the
/// worker that owns their entities. A full ring makes the producer wait (backpressure); nothing is
/// ever dropped.
///
/// `@unchecked Sendable` invariant: exactly one thread at a time calls the producer methods
/// (`tryPush`, `push`, `close`) and exactly one calls the consumer methods (`tryPop`, `pop`).
/// Slots in `[tail, head)` belong to the consumer and the rest to the producer; a slot changes
/// hands only through a releasing store of `head` (producer) or `tail` (consumer) that the other
/// side reads with an acquiring load, so a slot's contents are visible before its index is.
public final class ShardRing<Element: Sendable>: @unchecked Sendable {
    /// Number of slots (a power of two).
    public let capacity: Int
    private let mask: Int
    private let slots: UnsafeMutablePointer<Element>
    /// Two cache lines apart so producer and consumer never write the same line:
    /// line 0 holds `head` and the producer's cached `tail`, line 1 `tail` and the cached `head`.
    private let lines: UnsafeMutableRawPointer
    private static var lineStride: Int { 128 }

    private var head: UnsafeAtomic<Int> {
        UnsafeAtomic(at: lines.assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }
    private var tail: UnsafeAtomic<Int> {
        UnsafeAtomic(at: (lines + Self.lineStride).assumingMemoryBound(to: Int.AtomicRepresentation.self))
    }
    private var producerCachedTail: UnsafeMutablePointer<Int> { (lines + 8).assumingMemoryBound(to: Int.self) }
    private var consumerCachedHead: UnsafeMutablePointer<Int> {
        (lines + Self.lineStride + 8).assumingMemoryBound(to: Int.self)
    }
    private let closedFlag = ManagedAtomic<Bool>(false)
    private let waits = ManagedAtomic<Int>(0)

    /// A ring of at least `capacity` slots (rounded up to a power of two, minimum 2).
    public init(capacity: Int) {
        precondition(capacity >= 1, "a ring needs at least one slot")
        var size = 2
        while size < capacity { size <<= 1 }
        self.capacity = size
        mask = size - 1
        slots = .allocate(capacity: size)
        lines = .allocate(byteCount: 2 * Self.lineStride, alignment: Self.lineStride)
        lines.initializeMemory(as: UInt8.self, repeating: 0, count: 2 * Self.lineStride)
        lines.initializeMemory(as: Int.AtomicRepresentation.self, to: .init(0))
        (lines + Self.lineStride).initializeMemory(as: Int.AtomicRepresentation.self, to: .init(0))
    }

    deinit {
        let h = head.load(ordering: .acquiring)
        var t = tail.load(ordering: .acquiring)
        while t != h {
            (slots + (t & mask)).deinitialize(count: 1)
            t &+= 1
        }
        slots.deallocate()
        lines.deallocate()
    }

    // MARK: Producer side

    /// Adds `item` unless the ring is full. Producer thread only.
    @discardableResult
    public func tryPush(_ item: Element) -> Bool {
        let h = head.load(ordering: .relaxed)  // only this thread writes head
        if h &- producerCachedTail.pointee >= capacity {
            producerCachedTail.pointee = tail.load(ordering: .acquiring)
            if h &- producerCachedTail.pointee >= capacity { return false }
        }
        (slots + (h & mask)).initialize(to: item)
        head.store(h &+ 1, ordering: .releasing)
        return true
    }

    /// Adds `item`, waiting while the ring is full. Returns false, without adding, once the ring
    /// is closed. Producer thread only.
    @discardableResult
    public func push(_ item: Element) -> Bool {
        if closedFlag.load(ordering: .relaxed) { return false }
        var backoff = Backoff()
        while !tryPush(item) {
            if closedFlag.load(ordering: .relaxed) { return false }
            if backoff.attempts == 0 { waits.wrappingIncrement(ordering: .relaxed) }
            backoff.wait()
        }
        return true
    }

    /// Ends the stream: the consumer's `pop` returns nil once it has taken every item pushed
    /// before. Either side may call it (a consumer closes to stop a waiting producer).
    public func close() { closedFlag.store(true, ordering: .releasing) }

    // MARK: Consumer side

    /// Takes the oldest item, or nil when the ring is empty. Consumer thread only.
    public func tryPop() -> Element? {
        let t = tail.load(ordering: .relaxed)  // only this thread writes tail
        if t == consumerCachedHead.pointee {
            consumerCachedHead.pointee = head.load(ordering: .acquiring)
            if t == consumerCachedHead.pointee { return nil }
        }
        let item = (slots + (t & mask)).move()
        tail.store(t &+ 1, ordering: .releasing)
        return item
    }

    /// Takes the oldest item, waiting for one; nil once the ring is closed and empty.
    /// Consumer thread only.
    public func pop() -> Element? {
        var backoff = Backoff()
        while true {
            if let item = tryPop() { return item }
            if closedFlag.load(ordering: .acquiring) { return tryPop() }
            backoff.wait()
        }
    }

    // MARK: Observation (any thread)

    /// Items in the ring right now (approximate while both sides run).
    public var count: Int { head.load(ordering: .relaxed) &- tail.load(ordering: .relaxed) }
    /// Whether `close()` was called.
    public var isClosed: Bool { closedFlag.load(ordering: .relaxed) }
    /// How many pushes found the ring full and had to wait: the backpressure the producer felt.
    public var fullWaits: Int { waits.load(ordering: .relaxed) }
}

/// Spin briefly, then yield the core, then sleep: a waiting side costs little CPU when the other
/// side is slow, and reacts within microseconds when it is fast. The naps then double from 50 µs
/// to 1 ms, so an idle worker wakes about 1,000 times a second rather than 20,000: on two cores
/// shared with the broker those wake-ups cost the whole pipeline latency.
public struct Backoff {
    public private(set) var attempts = 0

    public init() {}

    public mutating func wait() {
        attempts += 1
        if attempts < 64 {
            return
        } else if attempts < 128 {
            sched_yield()
        } else {
            // 50 µs, doubling to 1 ms.
            let nap = min(1_000_000, 50_000 << min(5, (attempts - 128) / 8))
            var ts = timespec(tv_sec: 0, tv_nsec: nap)
            nanosleep(&ts, nil)
        }
    }
}
