import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A local S3 endpoint (moto's server, from PyPI into .deps/venv) with one bucket, owned by one
/// test: the storage that lets a `PrivateBroker` restart and keep its topics, groups and offsets
/// (Tansu's PyPI build has no PostgreSQL or SQLite storage). It must outlive the broker: moto
/// keeps its objects in memory.
public final class ObjectStore: @unchecked Sendable {
    // Invariant: used from one test thread only.
    public let port: Int
    public let bucket: String
    private let process: Process

    /// moto's server: beside $VIGIL_PYTHON (scripts/test.sh sets it), else in .deps/venv.
    public static var server: String {
        if let python = ProcessInfo.processInfo.environment["VIGIL_PYTHON"] {
            return URL(fileURLWithPath: python).deletingLastPathComponent().appendingPathComponent("moto_server").path
        }
        return CLI.repositoryRoot.appendingPathComponent(".deps/venv/bin/moto_server").path
    }

    /// The environment Tansu's object-store engine reads: the endpoint, plain HTTP, dummy keys.
    public var environment: [String: String] {
        [
            "AWS_ENDPOINT": "http://127.0.0.1:\(port)", "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "vigil",
            "AWS_SECRET_ACCESS_KEY": "vigil", "AWS_DEFAULT_REGION": "us-east-1",
        ]
    }

    /// Tansu's `--storage-engine` for the bucket.
    public var storageURL: String { "s3://\(bucket)/" }

    /// Starts the server on a free loopback port and creates the bucket.
    public init(bucket: String = "vigil") throws {
        port = try PrivateBroker.freePort()
        self.bucket = bucket
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-object-store-\(port).log")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.server)
        p.arguments = ["-H", "127.0.0.1", "-p", "\(port)"]
        try PrivateBroker.launch(p, log: log)
        process = p
        // S3's CreateBucket is a PUT of the bucket's path; it answers once the server is up.
        for _ in 0..<150 {
            guard p.isRunning else { break }
            if Self.put("http://127.0.0.1:\(port)/\(bucket)") { return }
            usleep(100_000)
        }
        stop()
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        throw PrivateBroker.Failure(
            description: "moto_server did not create bucket \(bucket) within 15 s: \(text.suffix(2000))")
    }

    deinit { stop() }

    /// Stops the server; its objects are gone with it.
    public func stop() {
        PrivateBroker.halt(process, grace: .seconds(2))
    }

    /// An HTTP PUT with an empty body, through Python's standard library (Foundation's URL
    /// loading is not in every Linux toolchain): true on a 2xx answer.
    static func put(_ url: String) -> Bool {
        let python = ProcessInfo.processInfo.environment["VIGIL_PYTHON"] ?? "/usr/bin/python3"
        let script = """
            import sys, urllib.request
            try:
                urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b"", method="PUT"), timeout=2)
            except Exception:
                sys.exit(1)
            """
        guard let (status, _) = try? PrivateBroker.run(python, ["-c", script, url]) else { return false }
        return status == 0
    }
}
