/// Reads one mapping of a configuration document with typed accessors. Every problem goes to the
/// shared `ConfigDiagnostics` with its path; `finish()` then reports keys nobody asked for, with
/// the closest valid key as a hint. Accessors return nil when a value is absent or invalid.
public final class ConfigObject {
    public let path: ConfigPath
    public let mark: SourceMark?
    public let diagnostics: ConfigDiagnostics
    private let entries: [ConfigEntry]
    private var known: [String] = []

    /// Wraps `node`, or reports that it is not a mapping and returns nil.
    public init?(_ node: ConfigNode, at path: ConfigPath, diagnostics: ConfigDiagnostics) {
        guard case .mapping(let entries) = node.content else {
            diagnostics.report(path, "must be a mapping, got \(node.kindDescription)", at: node.mark)
            return nil
        }
        self.path = path
        self.mark = node.mark
        self.diagnostics = diagnostics
        var seen = Set<String>()
        for entry in entries where !seen.insert(entry.key).inserted {
            diagnostics.report(path.key(entry.key), "duplicate key", at: entry.keyMark)
        }
        self.entries = entries
    }

    /// The keys present in the document, in order.
    public var keys: [String] { entries.map(\.key) }

    /// The raw node under `key`, marking the key as known. Explicit nulls count as absent.
    public func node(_ key: String, required: Bool = false) -> ConfigNode? {
        if !known.contains(key) { known.append(key) }
        if let entry = entries.first(where: { $0.key == key }), !entry.value.isNull { return entry.value }
        if required { diagnostics.report(path.key(key), "required key is missing", at: mark) }
        return nil
    }

    /// Marks keys as valid without reading them (read elsewhere, or kept for a later stage).
    public func allow(_ keys: String...) { known.append(contentsOf: keys) }

    /// Reports every key that no accessor asked for, with the closest valid one as a hint.
    /// `context` names what the keys belong to, e.g. "for kind isolation_forest".
    public func finish(context: String? = nil) {
        for entry in entries where !known.contains(entry.key) {
            let what = context.map { "unknown key \($0)" } ?? "unknown key"
            diagnostics.report(
                path.key(entry.key), what + Suggestions.hint(for: entry.key, in: known, noun: "one of"),
                at: entry.keyMark)
        }
    }

    // MARK: Typed accessors

    public func string(_ key: String, required: Bool = false) -> String? {
        node(key, required: required).flatMap { ConfigScalar.string($0, at: path.key(key), diagnostics) }
    }

    public func bool(_ key: String, required: Bool = false) -> Bool? {
        node(key, required: required).flatMap { ConfigScalar.bool($0, at: path.key(key), diagnostics) }
    }

    public func int(_ key: String, in range: ClosedRange<Int>, required: Bool = false) -> Int? {
        node(key, required: required).flatMap { ConfigScalar.int($0, in: range, at: path.key(key), diagnostics) }
    }

    public func double(_ key: String, in range: NumberRange, required: Bool = false) -> Double? {
        node(key, required: required).flatMap { ConfigScalar.double($0, in: range, at: path.key(key), diagnostics) }
    }

    public func duration(_ key: String, in range: ClosedRange<Duration>, required: Bool = false) -> Duration? {
        node(key, required: required).flatMap {
            ConfigScalar.duration($0, in: range, at: path.key(key), diagnostics)
        }
    }

    /// A string that must be one of an enum's raw values; a near miss gets a "did you mean".
    public func choice<E: CaseIterable & RawRepresentable>(
        _ key: String, as type: E.Type = E.self, required: Bool = false, noun: String = "value"
    ) -> E? where E.RawValue == String {
        node(key, required: required).flatMap {
            ConfigScalar.choice($0, as: type, at: path.key(key), diagnostics, noun: noun)
        }
    }

    public func object(_ key: String, required: Bool = false) -> ConfigObject? {
        node(key, required: required).flatMap { ConfigObject($0, at: path.key(key), diagnostics: diagnostics) }
    }

    /// The items of a list with their paths; reports a non-list.
    public func list(_ key: String, required: Bool = false) -> [(node: ConfigNode, path: ConfigPath)]? {
        guard let value = node(key, required: required) else { return nil }
        guard case .sequence(let items) = value.content else {
            diagnostics.report(path.key(key), "must be a list, got \(value.kindDescription)", at: value.mark)
            return nil
        }
        return items.enumerated().map { (node: $1, path: path.key(key).index($0)) }
    }

    /// A list of strings; a single string is accepted as a list of one.
    public func strings(_ key: String, required: Bool = false) -> [String]? {
        guard let value = node(key, required: required) else { return nil }
        if case .scalar = value.content {
            return ConfigScalar.string(value, at: path.key(key), diagnostics).map { [$0] }
        }
        guard let items = list(key) else { return nil }
        let out = items.compactMap { ConfigScalar.string($0.node, at: $0.path, diagnostics) }
        return out.count == items.count ? out : nil
    }

    /// The entries of a mapping with string keys, e.g. a `properties:` pass-through.
    public func entries(_ key: String) -> [ConfigEntry]? {
        guard let value = node(key) else { return nil }
        guard case .mapping(let entries) = value.content else {
            diagnostics.report(path.key(key), "must be a mapping, got \(value.kindDescription)", at: value.mark)
            return nil
        }
        return entries
    }

    /// Reports a problem with the value under `key` (or the object itself when `key` is nil).
    public func report(_ key: String?, _ message: String) {
        diagnostics.report(key.map { path.key($0) } ?? path, message, at: key.flatMap(valueMark) ?? mark)
    }

    /// Where the value under `key` starts, falling back to the object itself.
    public func valueMark(_ key: String) -> SourceMark? {
        entries.first { $0.key == key }?.value.mark ?? mark
    }
}

/// A numeric interval whose ends may be open, printed the way a user reads it.
public struct NumberRange: Sendable, Hashable, CustomStringConvertible {
    public var lower: Double
    public var upper: Double
    public var lowerOpen: Bool
    public var upperOpen: Bool

    public init(_ lower: Double, _ upper: Double, lowerOpen: Bool = false, upperOpen: Bool = false) {
        self.lower = lower
        self.upper = upper
        self.lowerOpen = lowerOpen
        self.upperOpen = upperOpen
    }

    /// 0 < x < 1, for probabilities and rates that must be strictly inside the unit interval.
    public static let openUnit = NumberRange(0, 1, lowerOpen: true, upperOpen: true)
    /// 0 ≤ x ≤ 1.
    public static let unit = NumberRange(0, 1)
    /// x ≥ 0.
    public static let nonNegative = NumberRange(0, .infinity)
    /// x > 0.
    public static let positive = NumberRange(0, .infinity, lowerOpen: true)

    public func contains(_ x: Double) -> Bool {
        (lowerOpen ? x > lower : x >= lower) && (upperOpen ? x < upper : x <= upper)
    }

    public var description: String {
        let lo = "\(lowerOpen ? ">" : "≥") \(NumberRange.format(lower))"
        if upper == .infinity { return lo }
        return "\(lo) and \(upperOpen ? "<" : "≤") \(NumberRange.format(upper))"
    }

    static func format(_ x: Double) -> String {
        x == x.rounded() && abs(x) < 1e15 ? String(Int64(x)) : String(x)
    }
}

/// Decoding of single values, shared by `ConfigObject` and list items.
public enum ConfigScalar {
    public static func string(_ node: ConfigNode, at path: ConfigPath, _ d: ConfigDiagnostics) -> String? {
        guard case .scalar(let text, _) = node.content else {
            d.report(path, "must be a string, got \(node.kindDescription)", at: node.mark)
            return nil
        }
        return text
    }

    public static func bool(_ node: ConfigNode, at path: ConfigPath, _ d: ConfigDiagnostics) -> Bool? {
        if case .scalar(let text, plain: true) = node.content {
            if text == "true" { return true }
            if text == "false" { return false }
        }
        d.report(path, "must be true or false, got \(node.kindDescription)", at: node.mark)
        return nil
    }

    public static func int(
        _ node: ConfigNode, in range: ClosedRange<Int>, at path: ConfigPath, _ d: ConfigDiagnostics
    ) -> Int? {
        guard case .scalar(let text, plain: true) = node.content,
            let value = Int(String(text.filter { $0 != "_" }))
        else {
            d.report(path, "must be a whole number, got \(node.kindDescription)", at: node.mark)
            return nil
        }
        guard range.contains(value) else {
            d.report(path, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)", at: node.mark)
            return nil
        }
        return value
    }

    public static func double(
        _ node: ConfigNode, in range: NumberRange, at path: ConfigPath, _ d: ConfigDiagnostics
    ) -> Double? {
        guard case .scalar(let text, plain: true) = node.content,
            let value = Double(String(text.filter { $0 != "_" })), value.isFinite
        else {
            d.report(path, "must be a number, got \(node.kindDescription)", at: node.mark)
            return nil
        }
        guard range.contains(value) else {
            d.report(path, "must be \(range), got \(text)", at: node.mark)
            return nil
        }
        return value
    }

    public static func duration(
        _ node: ConfigNode, in range: ClosedRange<Duration>, at path: ConfigPath, _ d: ConfigDiagnostics
    ) -> Duration? {
        guard case .scalar(let text, _) = node.content, let value = DurationText.parse(text) else {
            let shown: String
            if case .scalar(let text, _) = node.content { shown = "'\(text)'" } else { shown = node.kindDescription }
            d.report(path, "bad duration \(shown): \(DurationText.hint)", at: node.mark)
            return nil
        }
        guard range.contains(value) else {
            d.report(
                path,
                "must be between \(DurationText.format(range.lowerBound)) and \(DurationText.format(range.upperBound)), got \(text)",
                at: node.mark)
            return nil
        }
        return value
    }

    public static func choice<E: CaseIterable & RawRepresentable>(
        _ node: ConfigNode, as type: E.Type, at path: ConfigPath, _ d: ConfigDiagnostics, noun: String
    ) -> E? where E.RawValue == String {
        guard let text = string(node, at: path, d) else { return nil }
        if let value = E(rawValue: text) { return value }
        let all = E.allCases.map(\.rawValue)
        d.report(path, "unknown \(noun) '\(text)'" + Suggestions.hint(for: text, in: all), at: node.mark)
        return nil
    }
}
