import Testing
import VigilTestKit

@testable import VigilEngine

/// The choice of the checkpoint a boot or a structural reload loads, without a broker.
@Suite(.ownThread) struct RestorePlanTests {
    static func stored(_ sequence: UInt64, _ location: String = "topic t") -> CheckpointStore.Stored {
        CheckpointStore.Stored(sequence: sequence, location: location, bytes: [])
    }

    /// Follows the plan, answering scans from `store` (newest first) and refusing every load in
    /// `bad`; returns the steps taken as text and how it ended.
    static func walk(_ plan: RestorePlan, store: [UInt64], bad: Set<String> = []) -> (steps: [String], end: String) {
        var plan = plan
        var steps: [String] = []
        for _ in 0..<50 {
            switch plan.next() {
            case .scan(let limit):
                steps.append("scan \(limit.map(String.init) ?? "all")")
                let kept = store.sorted(by: >).flatMap { [stored($0, "dir"), stored($0, "topic")] }
                let newest = limit.map { n in Array(Set(kept.map(\.sequence)).sorted(by: >).prefix(n)) }
                plan.found(newest.map { keep in kept.filter { keep.contains($0.sequence) } } ?? kept)
            case .load(.stored(let s)):
                let name = "\(s.sequence)@\(s.location)"
                steps.append("load \(name)")
                if !bad.contains(name) { return (steps, "loaded \(name)") }
            case .load(.running):
                steps.append("load running")
                if !bad.contains("running") { return (steps, "loaded running") }
            case .coldStart(let reason): return (steps, "cold: \(reason)")
            case .fail(let error): return (steps, "fail \(error.code): \(error.message)")
            }
        }
        return (steps, "did not end")
    }

    @Test func withoutCheckpointsABootStartsCold() {
        let r = Self.walk(RestorePlan(bootWithStore: false), store: [3])
        #expect(r.steps.isEmpty)
        #expect(r.end == "cold: no checkpoints configured")
    }

    @Test func aBootReadsOnlyTheNewestWhenItLoads() {
        let r = Self.walk(RestorePlan(bootWithStore: true), store: [5, 6, 7])
        #expect(r.steps == ["scan 1", "load 7@dir"])
        #expect(r.end == "loaded 7@dir")
    }

    @Test func aDamagedNewestFallsBackThroughItsOtherCopyThenTheOlderOnes() {
        let r = Self.walk(RestorePlan(bootWithStore: true), store: [5, 6, 7], bad: ["7@dir", "7@topic", "6@dir"])
        #expect(r.steps == ["scan 1", "load 7@dir", "load 7@topic", "scan all", "load 6@dir", "load 6@topic"])
        #expect(r.end == "loaded 6@topic")
    }

    @Test func whenNothingLoadsABootStartsColdAndSaysWhy() {
        let all: Set = ["5@dir", "5@topic", "6@dir", "6@topic"]
        #expect(
            Self.walk(RestorePlan(bootWithStore: true), store: [5, 6], bad: all).end
                == "cold: no stored checkpoint loads")
        let empty = Self.walk(RestorePlan(bootWithStore: true), store: [])
        #expect(empty.steps == ["scan 1", "scan all"])
        #expect(empty.end == "cold: no checkpoint stored")
    }

    @Test func aRequestedCheckpointIsLoadedOrTheEngineDoesNotStart() {
        let ok = Self.walk(RestorePlan(bootWithStore: true, requested: 6), store: [5, 6, 7])
        #expect(ok.steps == ["scan all", "load 6@dir"])
        let damaged = Self.walk(
            RestorePlan(bootWithStore: true, requested: 6), store: [5, 6, 7], bad: ["6@dir", "6@topic"])
        #expect(damaged.steps == ["scan all", "load 6@dir", "load 6@topic"])
        #expect(damaged.end.hasPrefix("fail restoreFailed: checkpoint 6 does not load"))
        let missing = Self.walk(RestorePlan(bootWithStore: true, requested: 9), store: [5, 6, 7])
        #expect(missing.end == "fail restoreFailed: checkpoint 9 is not among those kept (see vigil checkpoints list)")
    }

    @Test func aReloadLoadsTheRunningStateOrStartsCold() {
        let taken = EngineCheckpoint(
            sequence: 0, createdMs: 0, topology: "t", planSignature: 1, modelVersions: [], offsets: [],
            reason: "reload",
            workers: [])
        #expect(Self.walk(RestorePlan(rebuildFrom: taken), store: [7]).end == "loaded running")
        let refused = Self.walk(RestorePlan(rebuildFrom: taken), store: [7], bad: ["running"])
        #expect(refused.steps == ["load running"])
        #expect(refused.end == "cold: the running state does not fit the new topology")
    }
}
