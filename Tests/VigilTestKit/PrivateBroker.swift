import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A Tansu broker owned by one test, on its own loopback port, for tests that stop and restart
/// the broker. Memory storage loses every topic, group and offset on a restart; with an
/// `ObjectStore` the broker keeps them (a durable broker).
public final class PrivateBroker: @unchecked Sendable {
    // Invariant: used from one test thread only.
    public let port: Int
    /// The port clients are told to use (metadata): `port`, or a TLS terminator's in front of it.
    public let advertisedPort: Int
    private var process: Process?
    private let log: URL
    /// Where the broker keeps its data; nil: in memory.
    public let store: ObjectStore?

    /// The tansu binary: $VIGIL_TANSU (scripts/test.sh sets it), else .deps/bin/tansu.
    public static var tansu: String {
        ProcessInfo.processInfo.environment["VIGIL_TANSU"]
            ?? CLI.repositoryRoot.appendingPathComponent(".deps/bin/tansu").path
    }

    public var address: String { "127.0.0.1:\(port)" }

    /// Every broker process tests started, so scripts/test.sh can clean up after a crash.
    nonisolated(unsafe) static var started: [Int32] = [] {
        didSet {
            let list = started.map(String.init).joined(separator: "\n") + "\n"
            try? list.write(toFile: pidFile, atomically: true, encoding: .utf8)
        }
    }

    /// $VIGIL_TEST_PIDS (set by scripts/test.sh), else a file in the temporary directory.
    static var pidFile: String {
        ProcessInfo.processInfo.environment["VIGIL_TEST_PIDS"]
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("vigil-test-brokers.pids").path
    }

    /// Starts a broker on a free loopback port and waits until it answers.
    /// - Parameters:
    ///   - advertisedPort: the port its metadata names (a TLS terminator's, so that clients reach
    ///     it only through the terminator); default: its own.
    ///   - store: keep topics, groups and offsets there, across restarts.
    public init(advertisedPort: Int? = nil, store: ObjectStore? = nil) throws {
        self.store = store
        port = try Self.freePort()
        self.advertisedPort = advertisedPort ?? port
        log = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-private-broker-\(port).log")
        try start()
    }

    deinit { stop() }

    /// (Re)starts the broker on the same port and waits until it answers a metadata request.
    public func start() throws {
        let url = "tcp://127.0.0.1:\(port)"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.tansu)
        p.arguments = [
            "broker", "--listener-url", url, "--advertised-listener-url", "tcp://127.0.0.1:\(advertisedPort)",
            "--storage-engine", store?.storageURL ?? "memory://tansu/",
        ]
        if let store {
            p.environment = ProcessInfo.processInfo.environment.merging(store.environment) { $1 }
        }
        try Self.launch(p, log: log)
        process = p
        for _ in 0..<100 {
            if try answers() { return }
            usleep(100_000)
        }
        stop()
        throw Failure(description: "tansu did not answer on \(url) within 10 s (log: \(log.path))")
    }

    /// Stops the broker (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
    public func stop() {
        guard let p = process else { return }
        if p.isRunning { kill(p.processIdentifier, SIGCONT) }  // a paused broker would not act on SIGTERM
        Self.halt(p, grace: .seconds(5))
        process = nil
    }

    /// Sends SIGTERM, waits up to `grace`, then SIGKILL, and waits for the exit. Never waits on
    /// SIGTERM alone: a helper started from a test thread inherits its blocked signal mask, and
    /// moto's server (Python) then never sees the SIGTERM at all.
    static func halt(_ p: Process, grace: Duration) {
        guard p.isRunning else { return }
        p.terminate()
        let end = ContinuousClock.now.advanced(by: grace)
        while p.isRunning, ContinuousClock.now < end { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// Freezes the broker (SIGSTOP): connections stay open and requests go unanswered, as with a
    /// broker stalled by its host, until `resume()`.
    public func pause() {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGSTOP) }
    }

    /// Lets a paused broker run again (SIGCONT).
    public func resume() {
        if let p = process, p.isRunning { kill(p.processIdentifier, SIGCONT) }
    }

    /// Creates a topic with the broker's own command line (no Kafka client involved). A topic
    /// that exists already is fine: Tansu auto-creates topics a producer asks metadata for.
    public func createTopic(_ name: String, partitions: Int) throws {
        let (status, output) = try Self.run(
            Self.tansu, ["topic", "create", name, "--partitions", "\(partitions)", "--broker", "tcp://\(address)"])
        if status != 0 && !output.contains("already exists") {
            throw Failure(description: "tansu topic create \(name) exited \(status): \(output)")
        }
    }

    private func answers() throws -> Bool {
        guard process?.isRunning == true else {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            throw Failure(description: "tansu exited at start: \(text.suffix(2000))")
        }
        return try Self.run(Self.tansu, ["topic", "list", "--broker", "tcp://\(address)"]).status == 0
    }

    /// Starts `process` with no input and both outputs in `log` (emptied first), and lists it
    /// for scripts/test.sh's clean-up.
    static func launch(_ process: Process, log: URL) throws {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        try process.run()
        started.append(process.processIdentifier)
    }

    /// Runs a short command; its output (both streams) is small, so a pipe cannot fill up.
    static func run(_ path: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// A port the kernel just handed out on 127.0.0.1.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket() failed") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard bound else { throw Failure(description: "bind() on 127.0.0.1 failed") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }
}
