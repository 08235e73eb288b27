import VigilCore

/// Why a checkpoint could not be read: one struct with extensible codes, so callers (restore,
/// `vigil checkpoints list`) can tell "try the previous one" apart from "this build is too old".
public struct CheckpointError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of static constants.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The bytes do not start with a checkpoint's magic number.
        public static let notACheckpoint = Code("notACheckpoint")
        /// Written by a newer Vigil with a format version this build cannot read.
        public static let newerVersion = Code("newerVersion")
        /// A checkpoint of another kind (another model, or feature state).
        public static let wrongKind = Code("wrongKind")
        /// Written for other features (the feature-schema hash differs).
        public static let wrongSchema = Code("wrongSchema")
        /// Cut short.
        public static let truncated = Code("truncated")
        /// Checksum mismatch, bad compression, or a body that does not decode.
        public static let corrupt = Code("corrupt")
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// A damaged checkpoint is worth skipping for an older one; a newer version is not damage.
    public var isRetriable: Bool { false }

    public var description: String { "checkpoint \(code): \(reason)" }
}

/// The container every checkpoint is written in: a small versioned header naming what the body
/// is and which features it was computed over, then the body, LZ4-compressed, all covered by a
/// checksum. Bodies are written with `BinaryWriter` by the model or stage that owns them.
///
/// Layout (little-endian), format version 1:
///
/// | bytes | field |
/// |---|---|
/// | 4 | magic `VGCK` |
/// | 2 | format version |
/// | 1 + n | kind: length, then UTF-8 (`isolation_forest`, `feature_state`, …) |
/// | 8 | feature-schema hash |
/// | 8 | body length before compression |
/// | 8 | compressed length |
/// | compressed length | the body as one LZ4 frame (with its own content checksum) |
/// | 8 | `StableHash` of every byte before it |
public enum Checkpoint {
    public static let magic: [UInt8] = Array("VGCK".utf8)
    /// The version this build writes. Every earlier version stays readable (fixtures in tests).
    public static let formatVersion: UInt16 = 1
    /// Bodies larger than this are refused before allocating, whatever the header claims.
    public static let maxBodyBytes = 1 << 31

    /// What the header says.
    public struct Header: Sendable, Equatable {
        public var formatVersion: UInt16
        public var kind: String
        public var schema: UInt64
        public var bodyBytes: Int
        public var compressedBytes: Int
    }

    /// Wraps `body` for `kind`, computed over features with hash `schema`.
    public static func encode(kind: String, schema: UInt64, body: [UInt8]) -> [UInt8] {
        precondition(kind.utf8.count <= 255, "checkpoint kind names are at most 255 bytes")
        let compressed = LZ4.compress(body)
        var out: [UInt8] = magic
        out.reserveCapacity(compressed.count + 64)
        append(formatVersion, to: &out)
        out.append(UInt8(kind.utf8.count))
        out.append(contentsOf: kind.utf8)
        append(schema, to: &out)
        append(UInt64(body.count), to: &out)
        append(UInt64(compressed.count), to: &out)
        out.append(contentsOf: compressed)
        let sum = out.withUnsafeBytes { StableHash.hash($0) }
        append(sum, to: &out)
        return out
    }

    /// Reads the header only (for listings), checking magic and version.
    public static func header(_ bytes: [UInt8]) throws(CheckpointError) -> Header {
        var r = Reader(bytes: bytes)
        return try r.header()
    }

    /// Checks everything and returns the body. `kind` and `schema` must match what was written.
    public static func decode(_ bytes: [UInt8], kind: String, schema: UInt64) throws(CheckpointError) -> [UInt8] {
        var r = Reader(bytes: bytes)
        let header = try r.header()
        guard header.kind == kind else {
            throw CheckpointError(.wrongKind, "holds '\(header.kind)', expected '\(kind)'")
        }
        let payloadStart = r.offset
        guard bytes.count - payloadStart >= header.compressedBytes + 8 else {
            throw CheckpointError(
                .truncated, "\(bytes.count) bytes, the header announces \(payloadStart + header.compressedBytes + 8)")
        }
        guard bytes.count == payloadStart + header.compressedBytes + 8 else {
            throw CheckpointError(
                .corrupt, "\(bytes.count - payloadStart - header.compressedBytes - 8) bytes after the checksum")
        }
        let end = payloadStart + header.compressedBytes
        let stored = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: end, as: UInt64.self) }
        let actual = bytes.withUnsafeBytes { StableHash.hash(UnsafeRawBufferPointer(rebasing: $0[0..<end])) }
        guard UInt64(littleEndian: stored) == actual else {
            throw CheckpointError(.corrupt, "checksum mismatch: the bytes changed after they were written")
        }
        // Checked after the checksum, so a damaged schema field reads as damage, not as a mismatch.
        guard header.schema == schema else {
            throw CheckpointError(
                .wrongSchema,
                "written for other features (schema \(StableHash.hex(header.schema)), this topology has \(StableHash.hex(schema)))"
            )
        }
        let body: [UInt8]
        do {
            body = try LZ4.decompress(Array(bytes[payloadStart..<end]), maxSize: header.bodyBytes)
        } catch {
            throw CheckpointError(.corrupt, "body does not decompress: \(error.reason)")
        }
        guard body.count == header.bodyBytes else {
            throw CheckpointError(.corrupt, "body is \(body.count) bytes, the header says \(header.bodyBytes)")
        }
        return body
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func header() throws(CheckpointError) -> Header {
            guard bytes.count >= 4 else {
                throw CheckpointError(.truncated, "\(bytes.count) bytes: not even a magic number")
            }
            guard Array(bytes[0..<4]) == Checkpoint.magic else {
                throw CheckpointError(.notACheckpoint, "does not start with 'VGCK'")
            }
            offset = 4
            let version: UInt16 = try load()
            guard version >= 1 else { throw CheckpointError(.corrupt, "format version 0 does not exist") }
            guard version <= Checkpoint.formatVersion else {
                throw CheckpointError(
                    .newerVersion,
                    "format version \(version) was written by a newer Vigil; this build reads up to \(Checkpoint.formatVersion)"
                )
            }
            let kindLength = Int(try load() as UInt8)
            guard bytes.count - offset >= kindLength else { throw CheckpointError(.truncated, "ends inside the kind") }
            let kind = String(decoding: bytes[offset..<offset + kindLength], as: UTF8.self)
            offset += kindLength
            let schema: UInt64 = try load()
            let bodyBytes: UInt64 = try load()
            let compressedBytes: UInt64 = try load()
            guard bodyBytes <= UInt64(Checkpoint.maxBodyBytes), compressedBytes <= UInt64(Checkpoint.maxBodyBytes)
            else {
                throw CheckpointError(
                    .corrupt, "announces \(bodyBytes) bytes of body: more than any checkpoint may hold")
            }
            return Header(
                formatVersion: version, kind: kind, schema: schema, bodyBytes: Int(bodyBytes),
                compressedBytes: Int(compressedBytes))
        }

        mutating func load<T: FixedWidthInteger>() throws(CheckpointError) -> T {
            let size = MemoryLayout<T>.size
            guard bytes.count - offset >= size else { throw CheckpointError(.truncated, "ends inside the header") }
            defer { offset += size }
            return T(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: T.self) })
        }
    }
}
