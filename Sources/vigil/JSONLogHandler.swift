import Foundation
import Logging
import Synchronization

/// `--log-format json`: one JSON object per log line on standard error (time, level, logger,
/// message, and the metadata's keys), for log collectors that parse structured lines.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    /// One line at a time, whichever thread logs.
    private static let output = Mutex(())
    /// Set when `--log-format json` is in force: `printError` then writes JSON records too.
    static let enabled = Atomic<Bool>(false)

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var o: [String: Any] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) {
            o[key] = Self.plain(value)
        }
        o["time"] = Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        o["level"] = event.level.rawValue
        o["logger"] = label
        o["message"] = event.message.description
        guard var data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]) else { return }
        data.append(0x0A)
        Self.output.withLock { _ in FileHandle.standardError.write(data) }
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map(plain)
        case .dictionary(let d): return d.mapValues(plain)
        }
    }
}
