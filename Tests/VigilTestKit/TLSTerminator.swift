import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// stunnel (Debian `stunnel4`) in front of a loopback port: TLS on `port`, plain TCP to the
/// target behind it, with a self-signed certificate made for the test. With a `PrivateBroker`
/// that advertises `port`, clients reach the broker only through TLS.
public final class TLSTerminator: @unchecked Sendable {
    // Invariant: used from one test thread only.
    public let port: Int
    /// The certificate clients trust (`ssl.ca.location`): the terminator's own, self-signed.
    public let certificate: String
    public let directory: URL
    private var process: Process?

    /// The stunnel binary: $VIGIL_STUNNEL, else /usr/bin/stunnel4 (scripts/setup.sh installs it).
    public static var stunnel: String { ProcessInfo.processInfo.environment["VIGIL_STUNNEL"] ?? "/usr/bin/stunnel4" }

    /// Makes a certificate for 127.0.0.1, starts stunnel on `port` and waits until it accepts.
    public init(port: Int, forwardingTo target: Int) throws {
        self.port = port
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-tls-\(port)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let (status, output) = try PrivateBroker.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate, "-days", "2",
                "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            ])
        guard status == 0 else { throw PrivateBroker.Failure(description: "openssl req exited \(status): \(output)") }
        let config = directory.appendingPathComponent("stunnel.conf")
        try """
        foreground = yes
        pid =
        [kafka]
        accept = 127.0.0.1:\(port)
        connect = 127.0.0.1:\(target)
        cert = \(certificate)
        key = \(key)

        """.write(to: config, atomically: true, encoding: .utf8)
        guard FileManager.default.isExecutableFile(atPath: Self.stunnel) else {
            throw PrivateBroker.Failure(description: "\(Self.stunnel) is missing: scripts/setup.sh installs stunnel4")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.stunnel)
        p.arguments = [config.path]
        let log = directory.appendingPathComponent("stunnel.log")
        try PrivateBroker.launch(p, log: log)
        process = p
        for _ in 0..<100 {
            if Self.accepts(port) { return }
            guard p.isRunning else { break }
            usleep(50_000)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        stop()
        throw PrivateBroker.Failure(description: "stunnel did not listen on \(port): \(text.suffix(2000))")
    }

    deinit { stop() }

    public func stop() {
        guard let p = process else { return }
        // stunnel may linger on SIGTERM while clients hold connections.
        PrivateBroker.halt(p, grace: .seconds(2))
        process = nil
    }

    /// Whether something accepts TCP connections on 127.0.0.1:`port`.
    static func accepts(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { ptr in
            ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
