import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A TCP proxy in front of a test's broker that the test drives, for faults the broker itself
/// cannot make: bytes pass as they are, or late (latency), every open connection is cut,
/// connections go half-open (they stay up and nothing passes, as behind a dead route), or one
/// topic's writes are refused as a broker refuses them. Point the broker's advertised port at it
/// (`PrivateBroker(advertisedPort:)`), so that every client connection goes through it. It
/// forwards whole Kafka frames (a size, then the request or response).
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
        /// Produce requests that write to this topic are answered by the proxy with
        /// TOPIC_AUTHORIZATION_FAILED for each of their partitions, and never reach the broker
        /// (as when the topic's ACLs stop allowing the client's writes); the rest passes.
        case refuseWrites(topic: String)
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
        var refusedWrites = 0
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

    /// Connections accepted so far, those open now, those stuck half-open, the bytes thrown away,
    /// and the Produce requests refused.
    public var counts: (accepted: Int, open: Int, stuck: Int, discardedBytes: Int, refusedWrites: Int) {
        state.withLock { s in
            (
                s.accepted, s.connections.count, s.connections.values.filter(\.stuck).count, s.discardedBytes,
                s.refusedWrites
            )
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
            // Each direction on its own thread; the second to finish closes both sockets. Both
            // write to the client (the proxy's own answers too), one whole frame at a time.
            let finished = Atomic<Int>(0)
            let clientWrites = NSLock()
            for (from, to) in [(client, server), (server, client)] {
                let pump = Thread { [self] in
                    self.pump(id: id, from: from, to: to, client: client, clientWrites: clientWrites)
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

    private func pump(id: Int, from: Int32, to: Int32, client: Int32, clientWrites: NSLock) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var frames = FrameSplitter()
        loop: while !stopped.load(ordering: .acquiring) {
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
            for frame in frames.add(buffer[..<n]) {
                if from == client, case .refuseWrites(let topic) = mode,
                    let answer = ProduceRefusal.response(
                        to: Array(frame.dropFirst(4)), refusing: topic, error: ProduceRefusal.topicAuthorizationFailed)
                {
                    state.withLock { $0.refusedWrites += 1 }
                    let sent = clientWrites.withLock { sendAll(client, FrameSplitter.framed(answer)) }
                    if !sent { break loop }
                    continue
                }
                let sent = to == client ? clientWrites.withLock { sendAll(to, frame) } : sendAll(to, frame)
                if !sent { break loop }
            }
        }
        shutdown(to, Int32(SHUT_WR))
    }

    /// Cuts a byte stream into Kafka frames: a 4-byte big-endian size, then that many bytes.
    private struct FrameSplitter {
        var carry: [UInt8] = []

        /// The frames that `bytes` completes, each with its size prefix.
        mutating func add(_ bytes: ArraySlice<UInt8>) -> [[UInt8]] {
            carry += bytes
            var frames: [[UInt8]] = []
            var at = 0
            while carry.count - at >= 4 {
                let size = carry[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
                guard carry.count - at - 4 >= size else { break }
                frames.append(Array(carry[at..<at + 4 + size]))
                at += 4 + size
            }
            carry.removeFirst(at)
            return frames
        }

        static func framed(_ body: [UInt8]) -> [UInt8] {
            let n = UInt32(body.count)
            return [
                UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8),
                UInt8(truncatingIfNeeded: n),
            ]
                + body
        }
    }

    /// Writes all of `bytes`; false when the other side is gone. MSG_NOSIGNAL: a closed peer
    /// must not raise SIGPIPE in the test process.
    private func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let k = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, bytes.count - sent, Int32(MSG_NOSIGNAL)) }
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
