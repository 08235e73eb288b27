#if canImport(Glibc)
    import Glibc
#endif

/// Marks large buffers for transparent huge pages: filling hundreds of fresh megabytes (a
/// checkpoint's copy of the state) otherwise costs one page fault per 4 KiB, more than the copy.
public enum HugePages {
    static let size = 2 << 20

    /// Advises the kernel to back the 2 MiB-aligned part of `[start, start + count)` with huge
    /// pages. Advice only: nothing changes but speed if it is refused.
    public static func advise(_ start: UnsafeMutableRawPointer?, count: Int) {
        #if os(Linux)
            guard let start, count >= 2 * size else { return }
            let first = (Int(bitPattern: start) + size - 1) / size * size
            let end = (Int(bitPattern: start) + count) / size * size
            guard end > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
            _ = madvise(p, end - first, MADV_HUGEPAGE)
        #endif
    }
}
