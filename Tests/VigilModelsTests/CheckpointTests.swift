import Foundation
import PropertyBased
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct CheckpointTests {
    static let body: [UInt8] = Array((0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7 % 251) })
    static let sample = Checkpoint.encode(kind: "test_model", schema: 0xFEED_F00D, body: body)

    @Test func roundTripReturnsTheBody() throws {
        #expect(try Checkpoint.decode(Self.sample, kind: "test_model", schema: 0xFEED_F00D) == Self.body)
        let header = try Checkpoint.header(Self.sample)
        #expect(header.formatVersion == Checkpoint.formatVersion)
        #expect(header.kind == "test_model")
        #expect(header.bodyBytes == Self.body.count)
        #expect(try Checkpoint.decode(Checkpoint.encode(kind: "k", schema: 1, body: []), kind: "k", schema: 1) == [])
    }

    @Test func eachProblemHasItsOwnCode() {
        func code(_ bytes: [UInt8], kind: String = "test_model", schema: UInt64 = 0xFEED_F00D) -> CheckpointError.Code?
        {
            do {
                _ = try Checkpoint.decode(bytes, kind: kind, schema: schema)
                return nil
            } catch {
                return error.code
            }
        }
        #expect(code(Array("PK\u{3}\u{4}zip file".utf8)) == .notACheckpoint)
        #expect(code(Self.sample, kind: "other") == .wrongKind)
        #expect(code(Self.sample, schema: 42) == .wrongSchema)
        #expect(code(Array(Self.sample.dropLast(1))) == .truncated)
        #expect(code(Self.sample + [0]) == .corrupt)
        var newer = Self.sample
        newer[4] = 2  // format version 2, from the future
        #expect(code(newer) == .newerVersion)
        var flipped = Self.sample
        flipped[flipped.count / 2] ^= 0x10
        #expect(code(flipped) == .corrupt)
    }

    @Test func theNewerVersionErrorSaysWhatToDo() {
        var newer = Self.sample
        newer[4] = 9
        let error = #expect(throws: CheckpointError.self) {
            try Checkpoint.decode(newer, kind: "test_model", schema: 0xFEED_F00D)
        }
        #expect(error?.description.contains("written by a newer Vigil") == true)
    }

    /// Every prefix and every single-byte change either decodes to the same body or fails with
    /// an error: never a crash, never a different body.
    @Test func everyTruncationAndEveryByteFlipIsCaught() {
        let small = Checkpoint.encode(kind: "m", schema: 7, body: Array(Self.body.prefix(300)))
        for length in 0..<small.count {
            #expect(throws: CheckpointError.self) {
                try Checkpoint.decode(Array(small[..<length]), kind: "m", schema: 7)
            }
        }
        for position in small.indices {
            for bit in [0x01, 0x80] as [UInt8] {
                var damaged = small
                damaged[position] ^= bit
                #expect(throws: CheckpointError.self) { try Checkpoint.decode(damaged, kind: "m", schema: 7) }
            }
        }
    }

    /// Random bytes, and random mutations of a valid checkpoint, never crash the decoder.
    @Test func fuzzedInputNeverCrashes() async {
        await propertyCheck(count: 2000, input: Gen.uint8(in: 0 ... .max).array(of: 0...200)) { noise in
            _ = try? Checkpoint.decode(noise, kind: "test_model", schema: 0xFEED_F00D)
            _ = try? Checkpoint.header(noise)
            // The same noise over a valid checkpoint's header and payload.
            var mutated = Self.sample
            for (i, b) in noise.enumerated() where i % 3 == 0 {
                mutated[(Int(b) * 131 + i * 17) % mutated.count] = b
            }
            if let body = try? Checkpoint.decode(mutated, kind: "test_model", schema: 0xFEED_F00D) {
                #expect(body == Self.body)  // only an unchanged checkpoint may decode
            }
        }
    }

    /// Writes the fixture of the current format version when VIGIL_WRITE_CHECKPOINT_FIXTURE=1:
    /// run it once, with `--filter writeFixture`, whenever `Checkpoint.formatVersion` changes,
    /// and commit the file.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["VIGIL_WRITE_CHECKPOINT_FIXTURE"] == "1"))
    func writeFixture() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/checkpoint-v\(Checkpoint.formatVersion).bin")
        try Data(Self.sample).write(to: url)
    }

    /// Checkpoints written by earlier builds stay readable: one committed file per format
    /// version, each holding the same body.
    @Test(arguments: [1])
    func everyEarlierFormatVersionStillDecodes(version: Int) throws {
        let url = Bundle.module.url(
            forResource: "checkpoint-v\(version)", withExtension: "bin", subdirectory: "Fixtures")!
        let bytes = Array(try Data(contentsOf: url))
        #expect(try Checkpoint.header(bytes).formatVersion == UInt16(version))
        #expect(try Checkpoint.decode(bytes, kind: "test_model", schema: 0xFEED_F00D) == Self.body)
    }
}
