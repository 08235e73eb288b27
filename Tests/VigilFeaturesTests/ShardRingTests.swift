import Foundation
import Testing
import VigilTestKit

@testable import VigilFeatures

@Suite(.ownThread) struct ShardRingTests {
    /// A producer and a consumer thread move tens of millions of items through a small ring:
    /// every item arrives once, in order (the checksum weighs position), and the full ring made
    /// the producer wait instead of dropping. `scripts/test.sh` also runs this under TSan.
    @Test(.timeLimit(.minutes(10))) func producerAndConsumerThreadsMoveEveryItemExactlyOnce() async {
        let items = ProcessInfo.processInfo.environment["VIGIL_RING_ITEMS"].flatMap(Int.init) ?? 20_000_000
        let ring = ShardRing<UInt64>(capacity: 1024)
        let producer = Thread {
            for i in 0..<UInt64(items) { ring.push(i) }
            ring.close()
        }
        final class Result: @unchecked Sendable {  // written by the consumer thread, read after join
            var count = 0
            var checksum: UInt64 = 0
            var ordered = true
        }
        let result = Result()
        let done = DispatchSemaphore(value: 0)
        let consumer = Thread {
            var expected: UInt64 = 0
            while let item = ring.pop() {
                if item != expected { result.ordered = false }
                expected = item + 1
                result.count += 1
                result.checksum = result.checksum &* 31 &+ item
            }
            done.signal()
        }
        consumer.start()
        producer.start()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                c.resume()
            }
        }
        var expected: UInt64 = 0
        for i in 0..<UInt64(items) { expected = expected &* 31 &+ i }
        #expect(result.count == items)
        #expect(result.checksum == expected)
        #expect(result.ordered)
        #expect(ring.count == 0)
    }

    @Test func fullRingRefusesWithoutDroppingAndEmptyRingReturnsNil() {
        let ring = ShardRing<Int>(capacity: 3)
        #expect(ring.capacity == 4)
        #expect(ring.tryPop() == nil)
        for i in 0..<4 { #expect(ring.tryPush(i)) }
        #expect(!ring.tryPush(99))
        #expect(ring.tryPop() == 0)
        #expect(ring.tryPush(4))
        #expect((0..<4).compactMap { _ in ring.tryPop() } == [1, 2, 3, 4])
    }

    @Test func closeEndsTheStreamAfterTheRemainingItems() {
        let ring = ShardRing<String>(capacity: 8)
        ring.push("a")
        ring.push("b")
        ring.close()
        #expect(!ring.push("c"))
        #expect(ring.pop() == "a")
        #expect(ring.pop() == "b")
        #expect(ring.pop() == nil)
    }

    /// Items still in the ring are released with it (class instances, so a leak would show).
    @Test func remainingItemsAreReleasedWithTheRing() {
        final class Token: Sendable {}
        weak var weakToken: Token?
        do {
            let ring = ShardRing<Token>(capacity: 4)
            let token = Token()
            weakToken = token
            ring.push(token)
        }
        #expect(weakToken == nil)
    }

    /// A producer faster than its consumer waits on the full ring; `fullWaits` counts it.
    @Test func fullRingMakesTheProducerWait() async {
        let ring = ShardRing<Int>(capacity: 2)
        let done = DispatchSemaphore(value: 0)
        Thread {
            for i in 0..<1000 { ring.push(i) }
            ring.close()
        }.start()
        Thread {
            var n = 0
            while ring.pop() != nil {
                n += 1
                if n % 100 == 0 { usleep(1000) }
            }
            done.signal()
        }.start()
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                done.wait()
                c.resume()
            }
        }
        #expect(ring.fullWaits > 0)
    }
}
