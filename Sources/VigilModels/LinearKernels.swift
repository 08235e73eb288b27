import COpenBLAS

/// Dense kernels for scoring linear models over a micro-batch of feature rows, in two
/// implementations (CBLAS and a plain loop) so the faster one can be chosen by measurement.
public enum LinearKernels {
    /// OpenBLAS's build description, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64`.
    public static var openBLASConfig: String {
        String(String(cString: openblas_get_config()).drop { $0 == " " })
    }

    /// The CPU kernel OpenBLAS picked at run time, e.g. `Haswell`.
    public static var openBLASCore: String { String(cString: openblas_get_corename()) }

    /// Keeps OpenBLAS on the calling thread: workers already own one core each, and small
    /// micro-batches lose more to thread hand-off than they gain.
    public static func useSingleThread() { openblas_set_num_threads(1) }

    /// `out[i] = bias + Σⱼ rows[i·d + j] · weights[j]` through `cblas_dgemv`.
    /// - Parameters:
    ///   - rows: `count` feature rows of `weights.count` values each, row-major.
    ///   - out: receives `count` scores; must have room for them.
    public static func affineBLAS(
        rows: UnsafeBufferPointer<Double>, count: Int, weights: UnsafeBufferPointer<Double>, bias: Double,
        out: UnsafeMutableBufferPointer<Double>
    ) {
        let d = weights.count
        precondition(rows.count >= count * d && out.count >= count, "affineBLAS: buffers too small")
        guard count > 0, d > 0 else {
            for i in 0..<count { out[i] = bias }
            return
        }
        for i in 0..<count { out[i] = bias }
        cblas_dgemv(
            CblasRowMajor, CblasNoTrans, Int32(count), Int32(d), 1.0, rows.baseAddress, Int32(d),
            weights.baseAddress, 1, 1.0, out.baseAddress, 1)
    }

    /// The same as `affineBLAS`, as a plain Swift loop (which the compiler vectorises).
    public static func affineLoop(
        rows: UnsafeBufferPointer<Double>, count: Int, weights: UnsafeBufferPointer<Double>, bias: Double,
        out: UnsafeMutableBufferPointer<Double>
    ) {
        let d = weights.count
        precondition(rows.count >= count * d && out.count >= count, "affineLoop: buffers too small")
        for i in 0..<count {
            var sum = 0.0
            let base = i * d
            for j in 0..<d { sum += rows[base + j] * weights[j] }
            out[i] = bias + sum
        }
    }
}
