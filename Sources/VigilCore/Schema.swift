/// The type of an event field, which decides how it is parsed and which features may use it.
public enum FieldType: String, Sendable, Hashable, CaseIterable {
    /// A JSON number (integer or decimal).
    case number
    /// A string drawn from a modest set of values (country, merchant category): hashed for models.
    case category
    /// A free-form string or identifier (card id, user id).
    case string
    /// A JSON `true` / `false`.
    case boolean
    /// Event time: an RFC 3339 string or a number of seconds / milliseconds since the epoch.
    case timestamp

    /// Whether values of this type can key a window or be counted as distinct values.
    public var isKeyLike: Bool { self == .category || self == .string }
}

/// One declared event field.
public struct FieldSpec: Sendable, Hashable {
    /// Field name as it appears in the event. Map key under `fields:`.
    public var name: String
    /// Key `type` (or the short form `name: type`).
    public var type: FieldType
    /// Key `required` (default true): an event without it goes to the dead letters.
    public var required: Bool
    /// Keys `min` / `max` (numbers only): values outside go to the dead letters.
    public var min: Double?
    public var max: Double?

    public init(name: String, type: FieldType, required: Bool = true, min: Double? = nil, max: Double? = nil) {
        self.name = name
        self.type = type
        self.required = required
        self.min = min
        self.max = max
    }
}

/// The declared fields of a topology's events, in declaration order.
public struct Schema: Sendable, Hashable {
    public var fields: [FieldSpec]
    /// Fields declared with an invalid type: already reported, so references to them stay quiet.
    public var rejected: Set<String> = []

    public init(fields: [FieldSpec]) { self.fields = fields }

    public subscript(name: String) -> FieldSpec? { fields.first { $0.name == name } }

    public var names: [String] { fields.map(\.name) }

    /// Decodes `fields:`, a mapping of name to type (`amount: number`) or to a mapping
    /// (`amount: { type: number, required: false, min: 0 }`).
    public static func decode(_ node: ConfigNode, at path: ConfigPath, _ d: ConfigDiagnostics) -> Schema {
        guard case .mapping(let entries) = node.content else {
            d.report(path, "must be a mapping of field name to type, got \(node.kindDescription)", at: node.mark)
            return Schema(fields: [])
        }
        if entries.isEmpty { d.report(path, "declares no fields; declare at least the entity key", at: node.mark) }
        var fields: [FieldSpec] = []
        var rejected: Set<String> = []
        for entry in entries {
            defer { if !fields.contains(where: { $0.name == entry.key }) { rejected.insert(entry.key) } }
            let fieldPath = path.key(entry.key)
            if case .scalar = entry.value.content {
                if let type = ConfigScalar.choice(entry.value, as: FieldType.self, at: fieldPath, d, noun: "field type")
                {
                    fields.append(FieldSpec(name: entry.key, type: type))
                }
                continue
            }
            guard let object = ConfigObject(entry.value, at: fieldPath, diagnostics: d) else { continue }
            let type = object.choice("type", as: FieldType.self, required: true, noun: "field type")
            let required = object.bool("required") ?? true
            let min = object.double("min", in: NumberRange(-.infinity, .infinity))
            let max = object.double("max", in: NumberRange(-.infinity, .infinity))
            if let type, type != .number, min != nil || max != nil {
                object.report(min != nil ? "min" : "max", "applies only to fields of type number")
            }
            if let min, let max, min > max { object.report("max", "must be ≥ min (\(min)), got \(max)") }
            object.finish()
            if let type {
                fields.append(FieldSpec(name: entry.key, type: type, required: required, min: min, max: max))
            }
        }
        var schema = Schema(fields: fields)
        schema.rejected = rejected
        return schema
    }

    /// Checks that `name` (read from `key` of `object`) is a declared field of one of `types`,
    /// reporting an undeclared field (with a suggestion) or a wrong type.
    @discardableResult
    public func check(
        _ name: String, key: String, in object: ConfigObject, types: Set<FieldType>, role: String
    ) -> FieldSpec? {
        check(name, at: object.path.key(key), mark: object.valueMark(key), object.diagnostics, types: types, role: role)
    }

    /// The same check for a value at `path`.
    @discardableResult
    public func check(
        _ name: String, at path: ConfigPath, mark: SourceMark?, _ d: ConfigDiagnostics, types: Set<FieldType>,
        role: String
    ) -> FieldSpec? {
        guard let field = self[name] else {
            if rejected.contains(name) { return nil }
            let candidates = names + rejected.sorted()
            d.report(
                path, "unknown field '\(name)'" + Suggestions.hint(for: name, in: candidates, noun: "a declared field"),
                at: mark)
            return nil
        }
        guard types.contains(field.type) else {
            let allowed = FieldType.allCases.filter(types.contains).map(\.rawValue).joined(separator: " or ")
            d.report(path, "\(role) must be a field of type \(allowed); '\(name)' is \(field.type.rawValue)", at: mark)
            return nil
        }
        return field
    }
}
