import Foundation

/// Resolves secret references in Kafka properties, so that passwords and keys need not sit in a
/// topology file that is kept under version control: `${NAME}` in a value is replaced by the
/// environment variable `NAME`, and a key ending in `_file` (`sasl.password_file`) sets the key
/// without the suffix to the content of that file, its final line break removed.
///
/// References are resolved when the clients are made, never stored in the `Topology`: reload
/// diffs, audit records and logs only ever see the references.
public enum SecretProperties {
    /// The suffix of keys whose value names a file holding the real value.
    public static let fileSuffix = "_file"

    /// `raw` with every reference resolved.
    /// - Parameters:
    ///   - environment: the variables `${NAME}` reads (the process environment by default).
    ///   - readFile: reads a `_file` key's file (tests pass their own).
    /// - Throws: `EngineError(.kafkaFailed)` naming the key and what is missing (an unset
    ///   variable, an unreadable file, a key set both ways).
    public static func resolve(
        _ raw: [String: String], environment: [String: String] = ProcessInfo.processInfo.environment,
        readFile: (String) throws -> String = { try String(contentsOfFile: $0, encoding: .utf8) }
    ) throws(EngineError) -> [String: String] {
        var out: [String: String] = [:]
        for (key, value) in raw.sorted(by: { $0.key < $1.key }) {
            let expanded = try expand(value, key: key, environment: environment)
            guard key.hasSuffix(fileSuffix), key.count > fileSuffix.count else {
                if out[key] != nil { throw conflict(key) }
                out[key] = expanded
                continue
            }
            let target = String(key.dropLast(fileSuffix.count))
            if raw[target] != nil { throw conflict(target) }
            let content: String
            do {
                content = try readFile(expanded)
            } catch {
                throw EngineError(
                    .kafkaFailed,
                    "source.kafka.properties.\(key): cannot read \(expanded): \(error.localizedDescription)")
            }
            var trimmed = Substring(content)
            while trimmed.last == "\n" || trimmed.last == "\r" { trimmed = trimmed.dropLast() }
            out[target] = String(trimmed)
        }
        return out
    }

    /// Whether `value` refers to the environment (`${…}`): such values are not secrets in themselves.
    public static func hasReference(_ value: String) -> Bool { value.contains("${") }

    private static func conflict(_ key: String) -> EngineError {
        EngineError(.kafkaFailed, "source.kafka.properties.\(key) is set both inline and by \(key)\(fileSuffix)")
    }

    /// `value` with each `${NAME}` replaced; `$$` stands for a single `$`.
    static func expand(_ value: String, key: String, environment: [String: String]) throws(EngineError) -> String {
        guard value.contains("$") else { return value }
        var out = ""
        var rest = Substring(value)
        while let dollar = rest.firstIndex(of: "$") {
            out += rest[..<dollar]
            let after = rest[rest.index(after: dollar)...]
            if after.first == "$" {
                out += "$"
                rest = after.dropFirst()
            } else if after.first == "{" {
                guard let close = after.firstIndex(of: "}") else {
                    throw EngineError(.kafkaFailed, "source.kafka.properties.\(key): '${' without a closing '}'")
                }
                let name = String(after[after.index(after: after.startIndex)..<close])
                guard !name.isEmpty else {
                    throw EngineError(.kafkaFailed, "source.kafka.properties.\(key): '${}' names no variable")
                }
                guard let variable = environment[name] else {
                    throw EngineError(
                        .kafkaFailed, "source.kafka.properties.\(key): environment variable \(name) is not set")
                }
                out += variable
                rest = after[after.index(after: close)...]
            } else {
                out += "$"
                rest = after
            }
        }
        return out + rest
    }
}
