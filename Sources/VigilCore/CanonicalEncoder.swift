/// Writes a value as named fields in a fixed binary form, so that its hash identifies what it
/// means and nothing else: not the Swift type's property names or order, not how a toolchain
/// prints it. Identities that outlive a release (model versions, and with them alert ids) are
/// hashes of such encodings; golden tests pin them.
///
/// Each field is its name, a type tag and the value: integers and doubles as 8 little-endian
/// bytes (a double by its bit pattern), strings as UTF-8 with a length, durations as whole
/// seconds and attoseconds, lists with a count, and absent optionals as their own tag.
public struct CanonicalEncoder: Sendable {
    private var writer = BinaryWriter()

    /// Starts an encoding of `kind` in layout `version`; a layout change is a new version.
    public init(kind: String, version: UInt8) {
        writer.write(kind)
        writer.write(version)
    }

    /// The encoding so far.
    public var bytes: [UInt8] { writer.bytes }

    private enum Tag: UInt8 {
        case absent = 0
        case int, double, string, bool, duration, strings
    }

    private mutating func head(_ name: String, _ tag: Tag) {
        writer.write(name)
        writer.write(tag.rawValue)
    }

    public mutating func field(_ name: String, _ value: Int) {
        head(name, .int)
        writer.write(Int64(value))
    }

    public mutating func field(_ name: String, _ value: UInt64) {
        head(name, .int)
        writer.write(value)
    }

    public mutating func field(_ name: String, _ value: Double) {
        head(name, .double)
        writer.write(value)
    }

    public mutating func field(_ name: String, _ value: String) {
        head(name, .string)
        writer.write(value)
    }

    public mutating func field(_ name: String, _ value: Bool) {
        head(name, .bool)
        writer.write(value)
    }

    public mutating func field(_ name: String, _ value: Duration) {
        head(name, .duration)
        let (seconds, attoseconds) = value.components
        writer.write(seconds)
        writer.write(attoseconds)
    }

    public mutating func field(_ name: String, _ value: [String]?) {
        guard let value else {
            head(name, .absent)
            return
        }
        head(name, .strings)
        writer.write(UInt32(value.count))
        for s in value { writer.write(s) }
    }

    /// The 64-bit `StableHash` of the encoding.
    public var hash: UInt64 { bytes.withUnsafeBytes { StableHash.hash($0) } }
}
