import Foundation
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilTestKit

/// Every entity's window row (by its key hash) in a partition's state: the windows, as stored.
func windowRows(_ state: PartitionState) -> [UInt64: [UInt8]] {
    var rows: [UInt64: [UInt8]] = [:]
    for bytes in state.windows where bytes.count >= 100 {
        let stride = Int(bytes[16..<20].withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) })
        let count = Int(bytes[92..<100].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        for r in 0..<count {
            let row = Array(bytes[100 + r * stride..<100 + (r + 1) * stride])
            rows[row.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }] = row
        }
    }
    return rows
}

/// Several `vigil run` processes in one consumer group on a 6-partition topic: one SIGKILLed
/// mid-stream, one added later; the windows move with their partitions (docs/scaling.md).
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct ScaleOutTests {
    /// The lines `--record-outcomes` wrote (`topic partition offset outcome score finished_ms
    /// event_id alert_id`): (partition, offset) → outcomes, and alert ids.
    struct Outcomes {
        var seen: [Int32: Set<Int64>] = [:]
        var alertIDs = Set<String>()
        /// Each alert's record, and the instance (file) that raised it.
        var alertedAt: [String: (file: Int, partition: Int32, offset: Int64)] = [:]
        /// The records each instance gave an outcome.
        var seenBy: [Int: Set<String>] = [:]
        var lines = 0

        init(_ files: [URL]) throws {
            for (k, file) in files.enumerated() {
                let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") {
                    let f = line.split(separator: "\t")
                    guard f.count == 8, let p = Int32(f[1]), let o = Int64(f[2]) else { continue }
                    lines += 1
                    if f[3] == "pending" { continue }
                    seen[p, default: []].insert(o)
                    seenBy[k, default: []].insert("\(p)/\(o)")
                    if f[3] == "alerted", f[7] != "-" {
                        alertIDs.insert(String(f[7]))
                        alertedAt[String(f[7])] = (k, p, o)
                    }
                }
            }
        }
    }

    /// The lines of an instance's log that tell where its partitions went: assignments,
    /// revocations, losses, loaded and handed-off states, warnings and errors (the last 20,
    /// without their timestamps' date and the logger's label).
    static func trail(_ log: String) -> String {
        let wanted = ["Partition", "error", "warning", "Stopping", "Checkpoint not", "lost"]
        return log.split(separator: "\n").filter { line in wanted.contains { line.contains($0) } }.suffix(20)
            .map { "  " + $0.dropFirst(11).prefix(400) }.joined(separator: "\n")
    }

    @Test func threeInstancesOneKilledOneAddedScoreEveryRecordAndMoveWindowsExactly() async throws {
        let n = 36_000
        let partitions = 6
        let data = EngineIntegrationTests.generated(n, seed: 31)
        let scaled = try OperationsSetup("scale", everyEvents: 1500, partitions: partitions)
        let directory = scaled.directory
        func slice(_ k: Int) -> (events: [[UInt8]], cards: [String]) {
            let range = (k * n / 3)..<((k + 1) * n / 3)
            return (Array(data.events[range]), Array(data.cards[range]))
        }
        func start(_ name: String) throws -> RunningVigil {
            try RunningVigil(
                [
                    "run", "--topology", scaled.file, "--workers", "1", "--instance", name, "--no-watch",
                    "--log-level", "info", "--record-outcomes", directory.appendingPathComponent("\(name).tsv").path,
                ])
        }
        func count(_ run: RunningVigil, _ text: String) -> Int { run.stderr.components(separatedBy: text).count - 1 }
        func waitFor(_ what: String, timeout: Duration = .seconds(90), _ condition: () -> Bool) async throws {
            let end = ContinuousClock.now.advanced(by: timeout)
            while !condition() {
                guard ContinuousClock.now < end else { throw SetupFailure(description: "timed out: \(what)") }
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        let first = slice(0)
        try await offPool { try scaled.produce(first.events, keys: first.cards) }
        let a = try start("a")
        let b = try start("b")
        let c = try start("c")
        // Three members share the six partitions, and B has checkpointed its share.
        try await waitFor("three members with partitions and a checkpoint of B") {
            [a, b, c].allSatisfy { count($0, "Partitions assigned") > 0 } && count(b, "Checkpoint written") >= 1
                && [a, b, c].allSatisfy { count($0, "Partitions assigned") > count($0, "Partitions revoked") }
        }
        let second = slice(1)
        let feeding = Task { try await offPool { try scaled.produce(second.events, keys: second.cards, rate: 8000) } }
        try await waitFor("B reads the second slice") { count(b, "Checkpoint written") >= 2 }
        b.signal(SIGKILL)
        #expect(try await offPool { b.waitExit(timeout: .seconds(30)) } != 0)
        // B's partitions go to A and C (after the session timeout), from B's last checkpoint.
        let loadsBefore = count(a, "Partition states loaded") + count(c, "Partition states loaded")
        try await waitFor("A and C take B's partitions over") {
            count(a, "Partition states loaded") + count(c, "Partition states loaded") > loadsBefore
        }
        // D joins: A and C hand some of their partitions off to it, windows published at revoke.
        let d = try start("d")
        try await feeding.value
        try await waitFor("D is given partitions, with their windows") { count(d, "Partition states loaded") > 0 }
        let third = slice(2)
        try await offPool { try scaled.produce(third.events, keys: third.cards) }

        // Done when the group has committed every partition to its end.
        let tps = (0..<partitions).map { TopicPartition(scaled.source, Int32($0)) }
        let reader = try KafkaConsumer(
            configuration: try scaled.clients.consumer("tests", group: scaled.group), logger: .quiet)
        defer { reader.close() }
        // Where each partition ends: the events produced to it (the broker's end offsets were
        // seen to lag the acknowledgements here).
        var ends: [TopicPartition: Int64] = [:]
        for card in data.cards { ends[TopicPartition(scaled.source, scaled.partition(of: card)), default: 0] += 1 }
        #expect(ends.count == partitions)
        do {
            try await waitFor("the group commits every partition to its end", timeout: .seconds(240)) {
                let committed = (try? reader.committedOffsets(tps, timeout: .seconds(5))) ?? [:]
                return tps.allSatisfy { committed[$0] == ends[$0] }
            }
        } catch {
            let committed = (try? reader.committedOffsets(tps, timeout: .seconds(5))) ?? [:]
            for (name, run) in [("a", a), ("b", b), ("c", c), ("d", d)] {
                try? run.stderr.write(
                    to: directory.appendingPathComponent("\(name).log"), atomically: true, encoding: .utf8)
            }
            // CI keeps only this message: each instance's partition moves, losses and errors.
            let trails = [("a", a), ("b", b), ("c", c), ("d", d)].map { "\($0.0):\n\(Self.trail($0.1.stderr))" }
            Issue.record(
                "committed \(committed.sorted { $0.key < $1.key }) of \(ends.sorted { $0.key < $1.key }); logs in \(directory.path)\n\(trails.joined(separator: "\n"))"
            )
            throw error
        }
        for run in [a, c, d] { run.signal(SIGTERM) }
        for run in [a, c, d] {
            let status = try await offPool { run.waitExit(timeout: .seconds(60)) }
            #expect(status == 0, "\(run.stderr.suffix(3000))")
        }
        for (name, run) in [("a", a), ("b", b), ("c", c), ("d", d)] {
            try? run.stderr.write(
                to: directory.appendingPathComponent("\(name).log"), atomically: true, encoding: .utf8)
        }
        // D was given partitions others had held, with their windows.
        #expect(d.stderr.contains("Partition states loaded"), "\(d.stderr.suffix(3000))")
        #expect(
            a.stderr.contains("Partition states handed off") || c.stderr.contains("Partition states handed off"),
            "no revoke handed windows off:\n\(a.stderr.suffix(2000))\n\(c.stderr.suffix(2000))")

        // Every record has an outcome from some instance (a record read again after the kill
        // may have two), and every alert raised is in the alerts topic.
        let outcomes = try Outcomes(["a", "b", "c", "d"].map { directory.appendingPathComponent("\($0).tsv") })
        for tp in tps {
            let seen = outcomes.seen[tp.partition] ?? []
            #expect(seen.count == Int(ends[tp]!), "partition \(tp.partition): \(seen.count) of \(ends[tp]!) scored")
        }
        let published = Set(try await offPool { try scaled.alertIDs() })
        #expect(!outcomes.alertIDs.isEmpty)
        // The instances stopped by SIGTERM published every alert they raised. B, killed, may
        // have raised alerts the broker never acknowledged: their records are not committed,
        // so another instance read them again and decided them with its own models (the same
        // id if it alerted too). What must hold is that no such record was left undecided.
        let unpublished = outcomes.alertIDs.subtracting(published)
        let killed = 1  // b's file
        let byOthers = unpublished.filter { outcomes.alertedAt[$0]?.file != killed }
        #expect(byOthers.isEmpty, "\(byOthers.count) alerts raised by a stopped instance and not published")
        let undecided = unpublished.filter { id in
            guard let at = outcomes.alertedAt[id] else { return true }
            return ![0, 2, 3].contains { outcomes.seenBy[$0]?.contains("\(at.partition)/\(at.offset)") == true }
        }
        #expect(undecided.isEmpty, "\(undecided.count) of B's unpublished alerts were not decided again")
        if !unpublished.isEmpty {
            print("[scale] \(unpublished.count) of B's alerts were not acknowledged before its kill; decided again")
        }

        // One uninterrupted instance over the same partitions computes the same windows.
        let reference = try OperationsSetup(
            "scale-ref", source: scaled.source, everyEvents: 1500, partitions: partitions)
        let whole = try RunningVigil(
            ["run", "--topology", reference.file, "--workers", "1", "--instance", "ref", "--no-watch", "--until-end"])
        let wholeStatus = try await offPool { whole.waitExit(timeout: .seconds(240)) }
        #expect(wholeStatus == 0, "\(whole.stderr.suffix(3000))")
        let expected = try await offPool { try reference.partitionStates() }
        let got = try await offPool { try scaled.partitionStates() }
        for tp in tps {
            let (x, y) = (try #require(expected[tp]), try #require(got[tp]))
            #expect(x.offset == ends[tp] && y.offset == ends[tp], "\(tp): offsets \(x.offset), \(y.offset)")
            let (rx, ry) = (windowRows(x), windowRows(y))
            #expect(rx.count > 100)
            #expect(
                rx == ry, "\(tp): windows differ from the uninterrupted run's (\(rx.count) and \(ry.count) entities)")
        }
        print(
            "[scale] \(n) events on \(partitions) partitions; \(outcomes.lines) outcome lines over 4 instances; \(outcomes.alertIDs.count) alerts"
        )
    }
}
