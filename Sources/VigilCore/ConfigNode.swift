/// A line and column in a configuration file (1-based), so errors can point at the text.
public struct SourceMark: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public var description: String { "\(line):\(column)" }
}

/// A parsed configuration document independent of its syntax, so each module decodes its own
/// section of a topology without depending on a YAML library.
public struct ConfigNode: Sendable {
    /// The shape of a node. Scalars keep their text; `plain` is false for quoted strings, which
    /// are never read as numbers, booleans or null.
    public enum Content: Sendable {
        case scalar(String, plain: Bool)
        case mapping([ConfigEntry])
        case sequence([ConfigNode])
    }

    public var content: Content
    public var mark: SourceMark?

    public init(_ content: Content, mark: SourceMark? = nil) {
        self.content = content
        self.mark = mark
    }

    /// True for an explicit YAML null (`~`, `null` or nothing after the colon).
    public var isNull: Bool {
        if case .scalar(let text, plain: true) = content { return text.isEmpty || text == "~" || text == "null" }
        return false
    }

    /// How the node is named in a "wrong type" message.
    public var kindDescription: String {
        switch content {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let text, let plain):
            if isNull { return "null" }
            if !plain { return "the string \"\(text)\"" }
            return Double(text) != nil || text == "true" || text == "false" ? text : "'\(text)'"
        }
    }
}

/// One `key: value` pair of a mapping, in document order.
public struct ConfigEntry: Sendable {
    public var key: String
    public var keyMark: SourceMark?
    public var value: ConfigNode

    public init(key: String, keyMark: SourceMark? = nil, value: ConfigNode) {
        self.key = key
        self.keyMark = keyMark
        self.value = value
    }
}

/// Where a value sits in a document, printed the way users write it: `models[0].trees`.
public struct ConfigPath: Sendable, Hashable, CustomStringConvertible {
    enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    private(set) var components: [Component] = []

    /// The document itself.
    public static let root = ConfigPath()

    public func key(_ name: String) -> ConfigPath {
        var copy = self
        copy.components.append(.key(name))
        return copy
    }

    public func index(_ i: Int) -> ConfigPath {
        var copy = self
        copy.components.append(.index(i))
        return copy
    }

    public var description: String {
        if components.isEmpty { return "(top level)" }
        var out = ""
        for component in components {
            switch component {
            case .key(let name): out += out.isEmpty ? name : ".\(name)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }
}

/// One problem found in a configuration document: where it is and what to do about it.
public struct ConfigIssue: Sendable, Hashable, CustomStringConvertible {
    public var path: ConfigPath
    public var message: String
    public var mark: SourceMark?

    public init(path: ConfigPath, message: String, mark: SourceMark? = nil) {
        self.path = path
        self.message = message
        self.mark = mark
    }

    /// `models[0].trees: must be between 1 and 10000, got 0`
    public var description: String { "\(path): \(message)" }
}

/// Collects every problem found while decoding a document instead of stopping at the first, so
/// a user fixes a file in one round.
public final class ConfigDiagnostics {
    public private(set) var issues: [ConfigIssue] = []
    /// Where relative file names in the document resolve: the document's own folder (nil: the
    /// working directory).
    public var baseDirectory: String?

    public init() {}

    public func report(_ path: ConfigPath, _ message: String, at mark: SourceMark?) {
        issues.append(ConfigIssue(path: path, message: message, mark: mark))
    }

    public var isEmpty: Bool { issues.isEmpty }
}
