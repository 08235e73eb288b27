import Crypto
import Foundation
import VigilCore

/// The identity of a topology file as configuration, not as text: the SHA-256 of its parsed
/// document with mapping keys sorted, so comments, layout, quoting style of plain words and key
/// order do not change it, while any changed value does. Run manifests and alerts carry it.
public enum TopologyHash {
    /// The hash of a parsed document, 64 hex digits.
    public static func of(_ root: ConfigNode) -> String {
        var out: [UInt8] = []
        append(root, to: &out)
        return SHA256Text.hex(of: out)
    }

    /// A length-prefixed, tagged form: `m` mappings with sorted keys, `s` sequences, `p` plain
    /// and `q` quoted scalars (a quoted "10" is a string, a plain 10 a number).
    private static func append(_ node: ConfigNode, to out: inout [UInt8]) {
        func text(_ s: String) {
            out += "\(s.utf8.count):".utf8
            out += s.utf8
        }
        switch node.content {
        case .scalar(let value, let plain):
            out.append(plain ? UInt8(ascii: "p") : UInt8(ascii: "q"))
            text(plain && node.isNull ? "" : value)
        case .sequence(let items):
            out += "s\(items.count):".utf8
            for item in items { append(item, to: &out) }
        case .mapping(let entries):
            out += "m\(entries.count):".utf8
            for entry in entries.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                text(entry.key)
                append(entry.value, to: &out)
            }
        }
    }
}

/// SHA-256 of bytes and files as lowercase hex: what manifests record inputs by.
public enum SHA256Text {
    public static func hex(of bytes: some DataProtocol) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    /// The hash of a whole file, read in blocks.
    /// - Throws: `VigilError(.ioFailed)` when it cannot be read.
    public static func hex(ofFile path: String) throws(VigilError) -> String {
        guard let file = fopen(path, "rb") else {
            throw VigilError(.ioFailed, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var hasher = SHA256()
        var block = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = block.withUnsafeMutableBytes { fread($0.baseAddress!, 1, $0.count, file) }
            if n == 0 { break }
            block.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        if ferror(file) != 0 { throw VigilError(.ioFailed, "reading \(path) failed") }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }
}
