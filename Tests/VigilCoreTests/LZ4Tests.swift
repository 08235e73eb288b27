import Testing
import VigilCore
import VigilTestKit

@Suite(.ownThread) struct LZ4Tests {
    /// Deterministic bytes; `repetitive` makes them compressible like real checkpoint state.
    static func bytes(_ n: Int, seed: UInt64, repetitive: Bool) -> [UInt8] {
        var x = seed
        return (0..<n).map { i in
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return repetitive ? UInt8(truncatingIfNeeded: (i / 64) % 7) : UInt8(truncatingIfNeeded: x >> 56)
        }
    }

    @Test(arguments: [0, 1, 100, 65_536, 1_000_003])
    func roundTripsRandomAndRepetitiveData(size: Int) throws {
        for repetitive in [false, true] {
            let input = Self.bytes(size, seed: UInt64(size), repetitive: repetitive)
            let frame = LZ4.compress(input)
            #expect(try LZ4.decompress(frame) == input)
            if repetitive && size >= 65_536 { #expect(frame.count < size / 10) }
        }
    }

    @Test func detectsACorruptByte() throws {
        let input = Self.bytes(200_000, seed: 1, repetitive: false)
        var frame = LZ4.compress(input)
        frame[frame.count / 2] ^= 0x5A
        #expect {
            try LZ4.decompress(frame)
        } throws: { ($0 as? VigilError)?.code == .corruptCompressedData }
    }

    @Test func detectsTruncationAndTrailingBytes() {
        let frame = LZ4.compress(Self.bytes(10_000, seed: 2, repetitive: true))
        #expect(throws: VigilError.self) { try LZ4.decompress(Array(frame.dropLast(5))) }
        #expect(throws: VigilError.self) { try LZ4.decompress(frame + [1, 2, 3]) }
        #expect(throws: VigilError.self) { try LZ4.decompress([1, 2, 3, 4, 5, 6, 7, 8]) }
    }

    @Test func refusesOutputLargerThanTheLimit() {
        let frame = LZ4.compress([UInt8](repeating: 7, count: 1_000_000))
        #expect(throws: VigilError.self) { try LZ4.decompress(frame, maxSize: 1000) }
    }

    @Test func reportsTheRuntimeVersion() {
        #expect(LZ4.versionString.split(separator: ".").count == 3)
    }

    @Test(arguments: [false, true]) func aFrameWrittenInPiecesDecompressesToTheirConcatenation(fast: Bool) throws {
        let pieces = [
            Self.bytes(100_000, seed: 3, repetitive: true), [], Self.bytes(7, seed: 4, repetitive: false),
            Self.bytes(300_000, seed: 5, repetitive: false),
        ]
        let whole = pieces.flatMap { $0 }
        var writer = LZ4.FrameWriter(totalSize: whole.count, pieces: pieces.count, fast: fast)
        for p in pieces { p.withUnsafeBytes { writer.append($0) } }
        let frame = writer.finish()
        #expect(try LZ4.decompress(frame) == whole)
    }
}
