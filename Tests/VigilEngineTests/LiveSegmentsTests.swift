import Foundation
import Testing
import VigilCore
import VigilFeatures
import VigilModels
import VigilTestKit

@testable import VigilEngine

/// The live segment counts a worker keeps: merged by value text across workers, kept through a
/// checkpoint, and dropped when the checkpoint was cut for other segment fields.
@Suite struct LiveSegmentsTests {
    static func tally(_ entries: [(hash: UInt64, name: String, labels: [(fraud: Bool, alerted: Bool)])]) -> SegmentTally
    {
        var t = SegmentTally(fields: ["country"])
        for e in entries {
            let code = t.append(0, hash: e.hash, name: e.name)
            for l in e.labels { t.counts[0][code].add(fraud: l.fraud, alerted: l.alerted) }
        }
        return t
    }

    @Test func workersTalliesMergeByValueTextIntoFairlearnsFigures() throws {
        // Two workers, one value each under another hash (numbers and strings may hash apart).
        let a = Self.tally([
            (1, "DE", [(true, true), (false, false), (false, true)]), (2, "FR", [(false, false)]),
        ])
        let b = Self.tally([(7, "DE", [(true, false)]), (8, "FR", [(true, true), (false, false)])])
        let report = try #require(SegmentTally.reports([a, b], fields: ["country"]).first)
        #expect(report.groups.map(\.value) == ["DE", "FR"])
        let de = report.groups[0]
        let fr = report.groups[1]
        #expect(de.events == 4 && de.positives == 2 && de.alerts == 2)
        #expect(fr.events == 3 && fr.positives == 1 && fr.alerts == 1)
        // Selection 2/4 and 1/3; TPR 1/2 and 1/1; FPR 1/2 and 0/2.
        #expect(abs(report.demographicParityDifference! - (0.5 - 1.0 / 3)) < 1e-15)
        #expect(abs(report.demographicParityRatio! - (1.0 / 3) / 0.5) < 1e-15)
        #expect(report.equalizedOddsDifference == 0.5)
        #expect(report.equalizedOddsRatio == 0)
    }

    @Test func aTallyRoundTripsItsCheckpointAndRefusesOtherFields() throws {
        let t = Self.tally([
            (1, "DE", [(true, true), (false, false)]), (LiveSegments.missing, "(missing)", [(false, true)]),
        ])
        var out = BinaryWriter()
        t.encode(into: &out)
        var r = BinaryReader(out.bytes)
        let back = try #require(try SegmentTally.decode(&r, fields: ["country"]))
        #expect(back.names == t.names && back.counts == t.counts && back.hashes == t.hashes && back.codes == t.codes)
        var other = BinaryReader(out.bytes)
        #expect(try SegmentTally.decode(&other, fields: ["channel"]) == nil)
        var cut = BinaryReader(Array(out.bytes.dropLast(3)))
        #expect(throws: CheckpointError.self) { try SegmentTally.decode(&cut, fields: ["country"]) }
    }

    @Test func waitingEventsKeepTheirSegmentValuesThroughACheckpoint() throws {
        var matrix = FeatureMatrix(names: ["a"])
        matrix.reset(rows: 1)
        matrix.values = [1]
        func join() -> LabelJoin {
            LabelJoin(
                expireMs: 1000, capacity: 4, earlyCapacity: 2, columns: 1, categoryColumns: 0, models: 0, segments: 2)
        }
        let first = join()
        first.add(
            idHash: 5, time: 0, score: 0.5, alerted: true, modelScores: [], flags: 0, segmentCodes: [1, 0],
            matrix: matrix, row: 0)
        var out = BinaryWriter()
        first.encode(into: &out)
        for keep in [true, false] {
            let second = join()
            var r = BinaryReader(out.bytes)
            try second.restore(from: &r, keepSegments: keep)
            let slot = try #require(second.take(5))
            let values = second.segmentValues(slot)
            #expect(
                [values[0], values[1]] == (keep ? [1, 0] : [LiveSegments.unknown, LiveSegments.unknown]))
        }
    }

    @Test func eventsGetCodesNamedFromTheirTextAndValuesPastTheLimitCountAsOther() throws {
        let topology = try TopologyLoader.load(
            path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path)
        // 120 countries, each with and without a channel (channel is optional).
        var lines: [String] = []
        for k in 0..<120 {
            let channel = k % 2 == 0 ? #","channel":"pos""# : ""
            lines.append(
                #"{"txn_id":"t\#(k)","card_id":"c1","ts":\#(1_767_225_600_000 + k),"amount":10,"merchant_id":"m","merchant_category":"g","country":"C\#(k)"\#(channel)}"#
            )
        }
        let bytes = Array(lines.joined(separator: "\n").utf8)
        var ranges: [Range<Int>] = []
        var start = 0
        for line in lines {
            ranges.append(start..<start + line.utf8.count)
            start += line.utf8.count + 1
        }
        var builder = ChunkBuilder(
            decoder: EventDecoder(source: topology.source, schema: topology.schema), router: ShardRouter(shards: 1),
            models: topology.models.count)
        let (chunk, works) = builder.build(
            count: lines.count, topics: ["t"], raw: FileRecords(bytes: bytes, lines: ranges), shards: 1,
            position: { (0, 0, Int64($0), nil) }, arrivalMs: 0)
        let work = try #require(works[0])
        #expect(work.batch.count == 120)
        let segments = LiveSegments(fields: ["country", "channel"], layout: work.batch.layout)
        var codes: [[UInt64]] = []
        for r in 0..<work.batch.count {
            segments.codes(work.batch, row: r, chunk: chunk, record: Int(work.rows[r]))
            codes.append([segments.scratch[0], segments.scratch[1]])
        }
        let tally = segments.tally
        #expect(tally.names[0].count == LiveSegments.maxValues + 1)
        #expect(Array(tally.names[0].prefix(3)) == ["C0", "C1", "C2"])
        #expect(tally.names[0].last == LiveSegments.otherValue)
        #expect(codes[5][0] == 5 && codes[100][0] == 100 && codes[119][0] == 100)
        #expect(tally.names[1] == ["pos", OutcomeRecorder.missingValue])
        #expect(codes[0][1] == 0 && codes[1][1] == 1)
        // Seen again, a value keeps its code.
        segments.codes(work.batch, row: 7, chunk: chunk, record: Int(work.rows[7]))
        #expect(segments.scratch[0] == 7 && segments.scratch[1] == 1)
    }
}
