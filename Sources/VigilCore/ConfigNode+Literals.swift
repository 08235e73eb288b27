/// Literal syntax for building configuration documents in code (defaults, tests):
/// `["kind": "window", "window": "10m", "buckets": 64]`. Dictionary literals keep their order.
extension ConfigNode: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// A quoted string: never read as a number or boolean.
    public init(stringLiteral value: String) { self.init(.scalar(value, plain: false)) }
    public init(integerLiteral value: Int) { self.init(.scalar(String(value), plain: true)) }
    public init(floatLiteral value: Double) { self.init(.scalar(String(value), plain: true)) }
    public init(booleanLiteral value: Bool) { self.init(.scalar(value ? "true" : "false", plain: true)) }
    public init(nilLiteral: ()) { self.init(.scalar("", plain: true)) }
    public init(arrayLiteral elements: ConfigNode...) { self.init(.sequence(elements)) }
    public init(dictionaryLiteral elements: (String, ConfigNode)...) {
        self.init(.mapping(elements.map { ConfigEntry(key: $0.0, value: $0.1) }))
    }

    /// An unquoted scalar, read as YAML would read it (`10m`, `yes`, `1e3`).
    public static func plain(_ text: String) -> ConfigNode { ConfigNode(.scalar(text, plain: true)) }
}
