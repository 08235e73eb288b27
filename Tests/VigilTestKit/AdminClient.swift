import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Reads a running `vigil run`'s admin endpoint: tests follow the engine through its typed
/// `/status` (phase, assignment, checkpoints written, restored checkpoint) instead of its log.
public enum AdminClient {
    /// `GET /status` on 127.0.0.1:`port`, parsed; nil when nothing answers yet.
    public static func status(port: Int) async -> [String: any Sendable]? {
        guard let url = URL(string: "http://127.0.0.1:\(port)/status") else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            (response as? HTTPURLResponse)?.statusCode == 200,
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object.mapValues { Status.sendable($0) }
    }

    /// The HTTP status of `GET path` on 127.0.0.1:`port`; nil when nothing answers.
    public static func statusCode(port: Int, path: String) async -> Int? {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return nil }
        return (response as? HTTPURLResponse)?.statusCode
    }

    /// The body of `GET path` on 127.0.0.1:`port` as text; nil when nothing answers with 200.
    public static func text(port: Int, path: String) async -> String? {
        guard let url = URL(string: "http://127.0.0.1:\(port)\(path)") else { return nil }
        var request = URLRequest(url: url)
        request.timeoutInterval = 5
        guard let (data, response) = try? await URLSession.shared.data(for: request),
            (response as? HTTPURLResponse)?.statusCode == 200
        else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    /// Field readers for `/status` objects.
    public enum Status {
        static func sendable(_ v: Any) -> any Sendable {
            switch v {
            case let n as NSNumber: return n.doubleValue
            case let s as String: return s
            case let a as [Any]: return a.map { sendable($0) }
            case let d as [String: Any]: return d.mapValues { sendable($0) }
            default: return String(describing: v)
            }
        }
    }
}

extension RunningVigil {
    /// Reads `/status` every 50 ms until `condition` holds for it; returns that status, or nil
    /// when the process exits or `timeout` passes first.
    public func waitForStatus(
        port: Int, timeout: Duration = .seconds(120), _ condition: ([String: any Sendable]) -> Bool
    ) async -> [String: any Sendable]? {
        let end = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < end, process.isRunning {
            if let status = await AdminClient.status(port: port), condition(status) { return status }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }
}

extension Dictionary where Key == String, Value == any Sendable {
    /// A number field of `/status` (JSON numbers arrive as doubles).
    public func number(_ key: String) -> Double? { self[key] as? Double }
    /// A list field of strings.
    public func strings(_ key: String) -> [String]? { (self[key] as? [any Sendable])?.compactMap { $0 as? String } }
    /// A text field.
    public func text(_ key: String) -> String? { self[key] as? String }
}
