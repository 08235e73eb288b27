import Foundation
import VigilCore
import Yams

/// Reads topology files: YAML text to a `ConfigNode` tree, then typed decoding and validation.
/// The only place that knows the file syntax.
public enum TopologyLoader {
    /// Every problem found in one file, printable as `FILE:LINE:COL: path: message` lines.
    public struct ValidationError: Error, Sendable, CustomStringConvertible {
        public var file: String
        public var issues: [ConfigIssue]

        public var description: String {
            issues.map { issue in
                let at = issue.mark.map { ":\($0.line):\($0.column)" } ?? ""
                return "\(file)\(at): \(issue)"
            }.joined(separator: "\n")
        }
    }

    /// Loads and validates the topology in `path`.
    /// - Throws: `ValidationError` listing every problem, including an unreadable file or bad YAML.
    public static func load(path: String) throws(ValidationError) -> Topology {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError(
                file: path, issues: [ConfigIssue(path: .root, message: "cannot read the file: \(reason(error))")])
        }
        return try parse(text, file: path)
    }

    /// Parses and validates topology `text`; `file` names it in errors.
    public static func parse(_ text: String, file: String = "<topology>") throws(ValidationError) -> Topology {
        let root: ConfigNode
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw ValidationError(file: file, issues: [ConfigIssue(path: .root, message: "the file is empty")])
            }
            root = convert(node)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw ValidationError(file: file, issues: [yamlIssue(error)])
        }
        let diagnostics = ConfigDiagnostics()
        if file != "<topology>" {
            diagnostics.baseDirectory = URL(fileURLWithPath: file).deletingLastPathComponent().path
        }
        guard var topology = Topology.decode(root, diagnostics), diagnostics.isEmpty else {
            throw ValidationError(file: file, issues: inFileOrder(diagnostics.issues))
        }
        topology.configHash = TopologyHash.of(root)
        return topology
    }

    /// The `admin` section of the topology file at `path` alone, read even when the rest does not
    /// validate: `vigil reload` must reach a running engine to tell it about a broken file. Nil
    /// when the file cannot be read or has no valid `admin.listen`.
    public static func adminSpec(path: String) -> AdminSpec? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let root = (try? Yams.load(yaml: text)) as? [String: Any], let admin = root["admin"] as? [String: Any],
            let listen = admin["listen"] as? String, let colon = listen.lastIndex(of: ":"),
            let port = Int(listen[listen.index(after: colon)...])
        else { return nil }
        return AdminSpec(
            host: String(listen[..<colon]), port: port, tokenEnv: admin["token_env"] as? String ?? "VIGIL_ADMIN_TOKEN",
            tokenFile: admin["token_file"] as? String)
    }

    /// Issues sorted by line and column, those without a position last, ties in report order.
    static func inFileOrder(_ issues: [ConfigIssue]) -> [ConfigIssue] {
        issues.enumerated().sorted { a, b in
            let ka = a.element.mark.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            let kb = b.element.mark.map { ($0.line, $0.column) } ?? (Int.max, Int.max)
            return ka != kb ? ka < kb : a.offset < b.offset
        }.map(\.element)
    }

    static func convert(_ node: Node) -> ConfigNode {
        let mark = node.mark.map { SourceMark(line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let s):
            return ConfigNode(.scalar(s.string, plain: s.style == .plain), mark: mark)
        case .mapping(let m):
            let entries = m.map { key, value in
                ConfigEntry(
                    key: key.string ?? "\(key)", keyMark: key.mark.map { SourceMark(line: $0.line, column: $0.column) },
                    value: convert(value))
            }
            return ConfigNode(.mapping(entries), mark: mark)
        case .sequence(let s):
            return ConfigNode(.sequence(s.map(convert)), mark: mark)
        case .alias:
            // compose() resolves aliases; an unresolved one reads as null.
            return ConfigNode(.scalar("", plain: true), mark: mark)
        }
    }

    private static func yamlIssue(_ error: any Error) -> ConfigIssue {
        guard let yaml = error as? YamlError else {
            return ConfigIssue(path: .root, message: "not valid YAML: \(reason(error))")
        }
        switch yaml {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            return ConfigIssue(
                path: .root, message: "not valid YAML: \(problem)",
                mark: SourceMark(line: mark.line, column: mark.column))
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ConfigIssue(
                path: .root, message: "duplicate key \(duplicates.sorted().map { "'\($0)'" }.joined(separator: ", "))",
                mark: SourceMark(line: context.mark.line, column: context.mark.column))
        default:
            return ConfigIssue(path: .root, message: "not valid YAML: \(yaml)")
        }
    }

    private static func reason(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}
