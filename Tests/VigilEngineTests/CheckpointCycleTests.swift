import Testing
import VigilTestKit

@testable import VigilEngine

/// When checkpoints are due and what the cycle does, as a pure state machine.
@Suite(.ownThread) struct CheckpointCycleTests {
    @Test func nothingReadMeansNothingToSaveHoweverLongItWas() {
        var c = CheckpointCycle(every: .seconds(30), everyEvents: nil, now: .zero)
        #expect(c.tick(now: .seconds(3600)) == .none)
        #expect(c.state == .idle)
    }

    @Test func aDueCheckpointWarmsThenCutsThenWrites() {
        var c = CheckpointCycle(every: .seconds(30), everyEvents: nil, now: .zero)
        c.read(events: 10)
        #expect(c.tick(now: .seconds(29)) == .none)
        #expect(c.tick(now: .seconds(30)) == .warm(.interval))
        #expect(c.state == .warming(.interval))
        #expect(c.tick(now: .seconds(31)) == .none, "nothing is cut while the buffers warm")
        c.warmed()
        c.read(events: 5)
        #expect(c.tick(now: .seconds(32)) == .cut(.interval))
        #expect(c.state == .writing(.interval))
        #expect(!c.dirty && c.eventsSinceCut == 0 && c.lastCut == .seconds(32))
        c.read(events: 5)
        #expect(c.tick(now: .seconds(100)) == .none, "one checkpoint at a time")
        c.written()
        #expect(c.state == .idle)
        #expect(c.tick(now: .seconds(100)) == .warm(.interval))
    }

    @Test func everyEventsCountsEventsNotTime() {
        var c = CheckpointCycle(every: .seconds(3600), everyEvents: 1000, now: .zero)
        c.read(events: 999)
        #expect(c.tick(now: .seconds(1)) == .none)
        c.read(events: 1)
        #expect(c.tick(now: .seconds(1)) == .warm(.events))
    }

    @Test func aRequestCutsAtOnceUnlessOneIsUnderWay() {
        var c = CheckpointCycle(every: .seconds(30), everyEvents: nil, now: .zero)
        #expect(c.request(.admin, now: .seconds(1)) == .cut(.admin))
        #expect(c.request(.admin, now: .seconds(2)) == .none)
        c.written()
        c.read(events: 1)
        #expect(c.tick(now: .seconds(40)) == .warm(.interval))
        #expect(c.request(.admin, now: .seconds(41)) == .none, "warming")
        c.warmed()
        #expect(c.request(.admin, now: .seconds(42)) == .none, "warm and due: its own cut comes first")
        #expect(c.request(.shutdown, now: .seconds(42), superseding: true) == .cut(.shutdown))
    }

    @Test func aCheckpointGivenUpIsWrittenAgainAtTheNextIntervalWithoutNewRecords() {
        var c = CheckpointCycle(every: .seconds(30), everyEvents: nil, now: .zero)
        c.read(events: 10)
        #expect(c.request(.admin, now: .seconds(1)) == .cut(.admin))
        c.written(saved: false)
        #expect(c.dirty, "what the failed checkpoint held is still unsaved")
        #expect(c.tick(now: .seconds(30)) == .none, "not before the interval")
        #expect(c.tick(now: .seconds(31)) == .warm(.interval))
        c.warmed()
        #expect(c.tick(now: .seconds(31)) == .cut(.interval))
        c.written(saved: true)
        #expect(!c.dirty)
        #expect(c.tick(now: .seconds(3600)) == .none)
    }
}
