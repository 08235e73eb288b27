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
        // Not zero-filled first: at hundreds of megabytes (an engine checkpoint) that costs as
        // much as a fifth of the compression.
        return [UInt8](unsafeUninitializedCapacity: bound) { dst, initialized in
            HugePages.advise(UnsafeMutableRawPointer(dst.baseAddress), count: bound)
            let written = input.withUnsafeBytes { src in
                LZ4F_compressFrame(dst.baseAddress, bound, src.baseAddress, input.count, &prefs)
            }
            // With a destination of compressFrameBound bytes, compression cannot fail.
            precondition(
                LZ4F_isError(written) == 0, "LZ4F_compressFrame: \(String(cString: LZ4F_getErrorName(written)))")
            initialized = written
        }
    }

    /// Writes one LZ4 frame from pieces given one after the other, without first gathering them
    /// into one buffer: a large state is compressed straight from where it lies.
    public struct FrameWriter: ~Copyable {
        private var context: OpaquePointer?
        private var prefs = LZ4F_preferences_t()
        private var output: [UInt8] = []
        private var written = 0

        /// - Parameters:
        ///   - totalSize: the sum of the pieces' sizes (written in the frame header).
        ///   - pieces: how many `append` calls will come (sizes the output buffer).
        ///   - fast: trade some ratio for speed (LZ4's "fast acceleration").
        public init(totalSize: Int, pieces: Int, fast: Bool = false) {
            prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
            prefs.frameInfo.contentSize = UInt64(totalSize)
            prefs.compressionLevel = fast ? -4 : 0
            let created = LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))
            precondition(LZ4F_isError(created) == 0, "LZ4F_createCompressionContext failed")
            // Every update may use its own bound; the sum over the pieces covers the whole frame.
            let bound =
                LZ4F_compressFrameBound(totalSize, &prefs) + (pieces + 2) * (LZ4F_compressBound(0, &prefs) + 64 * 1024)
            var prefs = prefs
            let context = context
            var header = 0
            output = [UInt8](unsafeUninitializedCapacity: bound) { dst, initialized in
                HugePages.advise(UnsafeMutableRawPointer(dst.baseAddress), count: bound)
                header = LZ4F_compressBegin(context, dst.baseAddress, bound, &prefs)
                precondition(LZ4F_isError(header) == 0, "LZ4F_compressBegin failed")
                initialized = bound
            }
            written = header
        }

        deinit { LZ4F_freeCompressionContext(context) }

        /// Compresses the next piece.
        public mutating func append(_ piece: UnsafeRawBufferPointer) {
            guard piece.count > 0 else { return }
            let context = context
            let offset = written
            var prefs = prefs
            let n = output.withUnsafeMutableBytes { dst in
                let room = LZ4F_compressBound(piece.count, &prefs)
                precondition(offset + room <= dst.count, "LZ4 frame writer: more input than announced")
                return LZ4F_compressUpdate(
                    context, dst.baseAddress! + offset, dst.count - offset, piece.baseAddress, piece.count, nil)
            }
            precondition(LZ4F_isError(n) == 0, "LZ4F_compressUpdate: \(String(cString: LZ4F_getErrorName(n)))")
            written += n
        }

        /// Ends the frame (checksum included) and returns it.
        public consuming func finish() -> [UInt8] {
            let context = context
            let offset = written
            let n = output.withUnsafeMutableBytes { dst in
                LZ4F_compressEnd(context, dst.baseAddress! + offset, dst.count - offset, nil)
            }
            precondition(LZ4F_isError(n) == 0, "LZ4F_compressEnd: \(String(cString: LZ4F_getErrorName(n)))")
            output.removeSubrange((offset + n)...)
            return output
        }
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
        // The frame header says how big the content is (Vigil always writes it): room for all
        // of it at once, instead of doubling through hundreds of megabytes.
        var info = LZ4F_frameInfo_t()
        var headerSize = input.count
        let peeked = input.withUnsafeBytes { LZ4F_getFrameInfo(context, &info, $0.baseAddress, &headerSize) }
        guard LZ4F_isError(peeked) == 0 else {
            throw VigilError(.corruptCompressedData, "LZ4: \(String(cString: LZ4F_getErrorName(peeked)))")
        }
        if info.contentSize > 0, info.contentSize <= UInt64(maxSize) {
            output.reserveCapacity(Int(info.contentSize))
            let capacity = output.capacity
            output.withUnsafeMutableBufferPointer {
                HugePages.advise(UnsafeMutableRawPointer($0.baseAddress), count: capacity)
            }
        }
        var consumed = headerSize
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
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
