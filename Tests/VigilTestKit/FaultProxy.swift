import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy in front of a test's broker that the test drives, for network faults the broker
/// itself cannot make: bytes pass as they are, or late (latency), every open connection is cut,
/// or connections go half-open (they stay up and nothing passes, as behind a dead route). Point
/// the broker's advertised port at it (`PrivateBroker(advertisedPort:)`), so that every client
/// connection goes through it.
public final class FaultProxy: @unchecked Sendable {
    // Invariant: the mutable state is in `state`; the threads only read `stopped`.
    public let port: Int
    public let target: Int
    public var address: String { "127.0.0.1:\(port)" }

    /// What happens to bytes that arrive.
    public enum Mode: Sendable, Equatable {
        /// Forwarded at once.
        case pass
        /// Forwarded after this delay (each read, in each direction).
        case delay(Duration)
        /// Read and thrown away: the connection stays open and never answers again, even once
        /// the mode is `pass` (a stream that lost bytes cannot resume); new connections made
        /// after that pass again.
        case halfOpen
    }

    private struct Connection {
        var client: Int32
        var server: Int32
        var stuck = false
    }

    private struct State {
        var mode: Mode = .pass
        var connections: [Int: Connection] = [:]
        var nextID = 0
        var accepted = 0
        var discardedBytes = 0
    }

    private let state = Mutex(State())
    private let stopped = Atomic<Bool>(false)
    private let listener: Int32

    /// Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`target`.
    public init(port: Int, target: Int) throws {
        self.port = port
        self.target = target
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PrivateBroker.Failure(description: "socket() failed") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = Self.loopback(port)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard bound, listen(fd, 64) == 0 else {
            close(fd)
            throw PrivateBroker.Failure(description: "the proxy cannot listen on 127.0.0.1:\(port)")
        }
        listener = fd
        let accepting = Thread { [self] in acceptLoop() }
        accepting.name = "fault-proxy-accept"
        accepting.start()
    }

    deinit { stop() }

    /// The mode for bytes from now on.
    public func set(_ mode: Mode) { state.withLock { $0.mode = mode } }

    /// Cuts every open connection (both sides see the close at once).
    public func dropConnections() {
        let open = state.withLock { s in
            defer { s.connections.removeAll() }
            return Array(s.connections.values)
        }
        for c in open {
            shutdown(c.client, Int32(SHUT_RDWR))
            shutdown(c.server, Int32(SHUT_RDWR))
        }
    }

    /// Connections accepted so far, those open now, those stuck half-open, and the bytes thrown away.
    public var counts: (accepted: Int, open: Int, stuck: Int, discardedBytes: Int) {
        state.withLock { s in
            (s.accepted, s.connections.count, s.connections.values.filter(\.stuck).count, s.discardedBytes)
        }
    }

    /// Stops listening and cuts every connection.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        dropConnections()
        usleep(200_000)  // the threads see `stopped` within one poll
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            var p = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(target)
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                close(client)
                close(server)
                continue
            }
            let id = state.withLock { s in
                s.nextID += 1
                s.accepted += 1
                s.connections[s.nextID] = Connection(client: client, server: server)
                return s.nextID
            }
            // Each direction on its own thread; the second to finish closes both sockets.
            let finished = Atomic<Int>(0)
            for (from, to) in [(client, server), (server, client)] {
                let pump = Thread { [self] in
                    self.pump(id: id, from: from, to: to)
                    if finished.add(1, ordering: .acquiringAndReleasing).newValue == 2 {
                        _ = state.withLock { $0.connections.removeValue(forKey: id) }
                        close(client)
                        close(server)
                    }
                }
                pump.name = "fault-proxy-pump"
                pump.start()
            }
        }
    }

    private func pump(id: Int, from: Int32, to: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopped.load(ordering: .acquiring) {
            var p = pollfd(fd: from, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 100)
            if ready == 0 { continue }
            let n = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if ready < 0 || n <= 0 { break }
            let (mode, stuck) = state.withLock { s -> (Mode, Bool) in
                if s.mode == .halfOpen { s.connections[id]?.stuck = true }
                let stuck = s.connections[id]?.stuck ?? true
                if stuck { s.discardedBytes += n }
                return (s.mode, stuck)
            }
            if stuck { continue }
            if case .delay(let d) = mode {
                Thread.sleep(forTimeInterval: Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18)
            }
            if !sendAll(to, buffer, n) { break }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Writes all `n` bytes; false when the other side is gone. MSG_NOSIGNAL: a closed peer
    /// must not raise SIGPIPE in the test process.
    private func sendAll(_ fd: Int32, _ buffer: [UInt8], _ n: Int) -> Bool {
        var sent = 0
        while sent < n {
            let k = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + sent, n - sent, Int32(MSG_NOSIGNAL)) }
            if k <= 0 { return false }
            sent += k
        }
        return true
    }

    private static func loopback(_ port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return addr
    }
}
