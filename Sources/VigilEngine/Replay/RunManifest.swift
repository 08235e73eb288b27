import Foundation
import VigilCore
import VigilKafka

/// The evidence of one replay: which input, labels, configuration, models and build produced
/// which scores and alerts. `vigil replay --manifest` writes it, `vigil evaluate` embeds one per
/// topology, and `vigil replay --verify` reruns it and confirms the same score and alert bytes.
public struct RunManifest: Codable, Sendable, Equatable {
    /// A file by its content.
    public struct FileDigest: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var bytes: Int

        /// Hashes the file at `path` now.
        public static func of(_ path: String) throws(VigilError) -> FileDigest {
            let sha = try SHA256Text.hex(ofFile: path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            return FileDigest(path: path, sha256: sha, bytes: size)
        }
    }

    /// The topology as configuration: its file, canonical hash, model versions and seeds.
    public struct TopologyIdentity: Codable, Sendable, Equatable {
        public var path: String
        public var name: String
        public var configHash: String
        public var modelVersions: [String]
        /// Each model's seed, by model name.
        public var seeds: [String: UInt64]
    }

    /// The build that ran: Vigil's version and commit, and the native libraries'.
    public struct Build: Codable, Sendable, Equatable {
        public var vigil: String
        /// The commit `HEAD` names in the checkout the binary sits in (uncommitted changes are not
        /// detected), or `$VIGIL_GIT_COMMIT`; `unknown` when neither is available.
        public var gitCommit: String
        public var librdkafka: String

        public static var current: Build {
            Build(vigil: VersionInfo.vigil, gitCommit: SourceCommit.current, librdkafka: KafkaRuntime.versionString)
        }
    }

    /// What came out: counts and the SHA-256 of the score lines and of the alert lines.
    public struct Outputs: Codable, Sendable, Equatable {
        public var events: Int
        public var alerts: Int
        public var deadLetters: Int
        public var scoresSha256: String
        public var alertsSha256: String
    }

    /// Format version of this manifest.
    public var version = 1
    public var createdAt: String
    public var build: Build
    public var input: FileDigest
    public var labels: FileDigest?
    public var topology: TopologyIdentity
    /// Workers and lines per chunk: the results depend on the first.
    public var workers: Int
    public var chunkLines: Int
    public var outputs: Outputs

    /// The manifest of a finished replay.
    public static func of(
        _ replay: Replay, topologyPath: String, outcome: Replay.Outcome, input: FileDigest, labels: FileDigest?
    ) throws(VigilError) -> RunManifest {
        let topology = replay.topology
        return RunManifest(
            createdAt: JSONText.rfc3339(milliseconds: Int64(Date().timeIntervalSince1970 * 1000)), build: .current,
            input: input, labels: labels,
            topology: TopologyIdentity(
                path: topologyPath, name: topology.name, configHash: topology.configHash ?? "",
                modelVersions: try Pipeline.modelVersions(of: topology),
                seeds: Dictionary(topology.models.map { ($0.name, $0.seed) }, uniquingKeysWith: { a, _ in a })),
            workers: replay.workers, chunkLines: replay.chunkLines,
            outputs: Outputs(
                events: outcome.summary.events, alerts: outcome.summary.alerts,
                deadLetters: outcome.summary.deadLetterTotal, scoresSha256: outcome.scoresSHA256,
                alertsSha256: outcome.alertsSHA256))
    }

    /// Reads a manifest file.
    public static func read(_ path: String) throws(VigilError) -> RunManifest {
        try JSONFile.read(path, as: "a run manifest")
    }

    /// Writes the manifest as indented JSON with sorted keys.
    public func write(to path: String) throws(VigilError) { try JSONFile.write(self, to: path) }
}

/// Manifests and evaluation results as files: indented, sorted, snake_case JSON.
enum JSONFile {
    static func read<T: Decodable>(_ path: String, as what: String) throws(VigilError) -> T {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.ioFailed, "cannot read \(path)")
        }
        do {
            return try JSONDecoder.snakeCase.decode(T.self, from: data)
        } catch {
            throw VigilError(.malformedInput, "\(path) is not \(what): \(error)")
        }
    }

    static func write(_ value: some Encodable, to path: String) throws(VigilError) {
        do {
            try JSONEncoder.snakeCase.encode(value).write(to: URL(fileURLWithPath: path))
        } catch {
            throw VigilError(.ioFailed, "cannot write \(path): \(error)")
        }
    }
}

extension JSONEncoder {
    /// Indented, sorted, snake_case JSON: the form of manifests and evaluation results.
    static var snakeCase: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }
}

extension JSONDecoder {
    static var snakeCase: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}

/// The commit of the source tree this binary was built from, found at run time without running
/// git (the engine never spawns a process): `.git/HEAD` and the ref it names, loose or packed.
enum SourceCommit {
    static let current: String = {
        if let commit = ProcessInfo.processInfo.environment["VIGIL_GIT_COMMIT"], !commit.isEmpty { return commit }
        // A build in a checkout: the executable lives in `.build/<config>/`, below the tree.
        var dir = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath()
            .deletingLastPathComponent()
        for _ in 0..<5 {
            let git = dir.appendingPathComponent(".git")
            if FileManager.default.fileExists(atPath: git.path) { return head(git) ?? "unknown" }
            dir.deleteLastPathComponent()
        }
        return "unknown"
    }()

    static func read(_ url: URL) -> String? {
        (try? String(contentsOf: url, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The commit `HEAD` names in the git directory `git`.
    static func head(_ git: URL) -> String? {
        guard let head = read(git.appendingPathComponent("HEAD")) else { return nil }
        guard head.hasPrefix("ref: ") else { return head }
        let ref = String(head.dropFirst(5))
        if let loose = read(git.appendingPathComponent(ref)), !loose.isEmpty { return loose }
        for line in (read(git.appendingPathComponent("packed-refs")) ?? "").split(separator: "\n")
        where line.hasSuffix(" " + ref) {
            return String(line.prefix { $0 != " " })
        }
        return nil
    }
}
