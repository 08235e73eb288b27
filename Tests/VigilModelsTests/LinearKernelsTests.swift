import Testing
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct LinearKernelsTests {
    /// Deterministic values in [-1, 1).
    static func values(_ n: Int, seed: UInt64) -> [Double] {
        var x = seed &+ 0x9E37_79B9_7F4A_7C15
        return (0..<n).map { _ in
            x ^= x << 13
            x ^= x >> 7
            x ^= x << 17
            return Double(x >> 11) / Double(1 << 53) * 2 - 1
        }
    }

    @Test(arguments: [(1, 1), (1, 8), (7, 33), (64, 16), (1024, 32)])
    func cblasMatchesThePlainLoop(batch: Int, dims: Int) {
        LinearKernels.useSingleThread()
        let rows = Self.values(batch * dims, seed: UInt64(batch * 1000 + dims))
        let weights = Self.values(dims, seed: 42)
        var viaBLAS = [Double](repeating: .nan, count: batch)
        var viaLoop = [Double](repeating: .nan, count: batch)
        rows.withUnsafeBufferPointer { r in
            weights.withUnsafeBufferPointer { w in
                viaBLAS.withUnsafeMutableBufferPointer {
                    LinearKernels.affineBLAS(rows: r, count: batch, weights: w, bias: 0.25, out: $0)
                }
                viaLoop.withUnsafeMutableBufferPointer {
                    LinearKernels.affineLoop(rows: r, count: batch, weights: w, bias: 0.25, out: $0)
                }
            }
        }
        for i in 0..<batch {
            #expect(abs(viaBLAS[i] - viaLoop[i]) <= 1e-12 * Double(dims), "row \(i)")
        }
        // And against the definition, for one row.
        let expected0 = 0.25 + (0..<dims).reduce(0.0) { $0 + rows[$1] * weights[$1] }
        #expect(abs(viaLoop[0] - expected0) <= 1e-12 * Double(dims))
    }

    @Test func reportsTheOpenBLASBuild() {
        #expect(LinearKernels.openBLASConfig.hasPrefix("OpenBLAS"))
        #expect(!LinearKernels.openBLASCore.isEmpty)
    }
}
