import CLZ4

/// LZ4 frame compression for checkpoints: the frame carries the content size and a content
/// checksum, so corruption and truncation are detected on decompression, not later.
public enum LZ4 {
    /// The runtime liblz4 version, e.g. `1.9.4`.
    public static var versionString: String { String(cString: LZ4_versionString()) }

    /// Compresses `input` into one LZ4 frame (content size and checksum included).
    public static func compress(_ input: [UInt8]) -> [UInt8] {
        var prefs = LZ4F_preferences_t()
        prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        prefs.frameInfo.contentSize = UInt64(input.count)
        let bound = LZ4F_compressFrameBound(input.count, &prefs)
        var output = [UInt8](repeating: 0, count: bound)
        let written = output.withUnsafeMutableBytes { dst in
            input.withUnsafeBytes { src in
                LZ4F_compressFrame(dst.baseAddress, bound, src.baseAddress, input.count, &prefs)
            }
        }
        // With a destination of compressFrameBound bytes, compression cannot fail.
        precondition(LZ4F_isError(written) == 0, "LZ4F_compressFrame: \(String(cString: LZ4F_getErrorName(written)))")
        output.removeSubrange(written...)
        return output
    }

    /// Decompresses one LZ4 frame.
    /// - Parameter maxSize: the largest decompressed size accepted, so a corrupt header cannot
    ///   make us allocate without bound.
    /// - Throws: `VigilError` with code `.corruptCompressedData` for corrupt, truncated or
    ///   oversized input, or trailing bytes after the frame.
    public static func decompress(_ input: [UInt8], maxSize: Int = 1 << 30) throws(VigilError) -> [UInt8] {
        var context: OpaquePointer?
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let context else {
            throw VigilError(.corruptCompressedData, "cannot create an LZ4 decompression context")
        }
        defer { LZ4F_freeDecompressionContext(context) }

        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var consumed = 0
        var hint = 1
        let failure: String? = input.withUnsafeBytes { src in
            while consumed < input.count {
                var srcSize = input.count - consumed
                var dstSize = chunk.count
                hint = chunk.withUnsafeMutableBytes { dst in
                    LZ4F_decompress(context, dst.baseAddress, &dstSize, src.baseAddress! + consumed, &srcSize, nil)
                }
                if LZ4F_isError(hint) != 0 { return "LZ4: \(String(cString: LZ4F_getErrorName(hint)))" }
                consumed += srcSize
                output.append(contentsOf: chunk[0..<dstSize])
                if output.count > maxSize { return "LZ4: decompressed size exceeds \(maxSize) bytes" }
                if hint == 0 { break }  // frame complete, checksum verified
                if srcSize == 0 && dstSize == 0 { break }
            }
            return nil
        }
        if let failure { throw VigilError(.corruptCompressedData, failure) }
        guard hint == 0 else {
            throw VigilError(.corruptCompressedData, "LZ4: truncated frame (\(input.count) bytes)")
        }
        guard consumed == input.count else {
            throw VigilError(.corruptCompressedData, "LZ4: \(input.count - consumed) trailing bytes after the frame")
        }
        return output
    }
}
