import Foundation
import Testing
import VigilEngine
import VigilTestKit

#if canImport(Glibc)
    import Glibc
#endif

/// Checkpoints that cannot be written: the checkpoint topic refuses writes (the proxy answers
/// with TOPIC_AUTHORIZATION_FAILED), or the checkpoint directory is full (a 16 MiB tmpfs that the
/// test fills, mounted for the engine alone by `unshare`). The engine goes on scoring and
/// committing, counts and logs each failure, leaves no partial checkpoint behind, and writes
/// whole ones again once it can.
@Suite(.ownThread)
struct CheckpointFaultTests {
    static let n = 40_000

    @Test func anUnwritableCheckpointTopicStopsNothingElseAndLeavesNoPartialCheckpoint() async throws {
        let n = Self.n
        let data = EngineIntegrationTests.generated(n, seed: 43)
        let proxyPort = try PrivateBroker.freePort()
        let broker = try PrivateBroker(advertisedPort: proxyPort)
        defer { broker.stop() }
        let proxy = try FaultProxy(port: proxyPort, target: broker.port)
        defer { proxy.stop() }
        let setup = try OperationsSetup("ckpt-topic", every: "2s", admin: true, brokers: proxy.address)
        let port = try #require(setup.adminPort)
        try await offPool { try setup.produce(Array(data.events[..<(n / 2)]), keys: Array(data.cards[..<(n / 2)])) }

        let run = try RunningVigil(OperationsTests.runArguments(setup))
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        let first = await run.waitForStatus(port: port, timeout: .seconds(180)) {
            ($0.number("checkpoints_written") ?? 0) >= 1 && ($0.number("events") ?? 0) >= Double(n / 2)
        }
        #expect(first != nil, "\(run.stderr.suffix(3000))")

        proxy.set(.refuseWrites(topic: setup.checkpoints))
        let before = await AdminClient.status(port: port) ?? [:]
        try await offPool { try setup.produce(Array(data.events[(n / 2)...]), keys: Array(data.cards[(n / 2)...])) }
        let failing = await run.waitForStatus(port: port, timeout: .seconds(120)) {
            ($0.number("checkpoints_failed") ?? 0) >= 3 && ($0.number("events") ?? 0) >= Double(n)
        }
        #expect(failing != nil, "checkpoints fail and events are still read: \(run.stderr.suffix(3000))")
        let written = failing?.number("checkpoints_written")
        #expect(written == before.number("checkpoints_written"), "no checkpoint counts as written meanwhile")
        // Scoring and committing go on without checkpoints.
        let committed = await setup.waitForCommitted(atLeast: Int64(n), timeout: .seconds(120))
        #expect(committed == Int64(n), "\(run.stderr.suffix(3000))")
        #expect(run.stderr.contains("Checkpoint not written"), "\(run.stderr.suffix(3000))")
        let refused = proxy.counts.refusedWrites
        #expect(refused > 0)

        // Writable again: the next interval writes what the failed ones held, though nothing new
        // was read, and it covers the whole stream.
        proxy.set(.pass)
        let failedBefore = await AdminClient.status(port: port)?.number("checkpoints_failed") ?? 0
        let again = await run.waitForStatus(port: port, timeout: .seconds(120)) {
            ($0.number("checkpoints_written") ?? 0) >= (written ?? 0) + 1
        }
        #expect(again != nil, "\(run.stderr.suffix(3000))")
        run.signal(SIGTERM)
        let exit = try await offPool { run.waitExit(timeout: .seconds(90)) }
        #expect(exit == 0, "\(run.stderr.suffix(3000))")

        // Every checkpoint on the topic is whole; none was skipped as incomplete.
        let scan = try await offPool { try setup.storedCheckpoints() }
        #expect(scan.skipped.isEmpty, "skipped: \(scan.skipped)")
        let newest = try #require(scan.stored.first)
        let checkpoint = try EngineCheckpoint.decode(newest.bytes, topology: "ops-test")
        let covered = checkpoint.offsets.first { $0.topic == setup.source }?.offset
        #expect(
            (covered ?? 0) >= Int64(n - 1), "the newest checkpoint covers the stream: \(String(describing: covered))")
        print(
            "[checkpoint-topic] \(refused) writes refused; \(Int(failedBefore)) checkpoints failed while the topic refused them, the offsets committed to \(committed) meanwhile; \(scan.stored.count) whole checkpoints stored afterwards, the newest at offset \(covered ?? -1)"
        )
    }

    @Test func aFullCheckpointDirectoryLeavesNoPartialFileAndWritesAgainOnceFreed() async throws {
        let n = Self.n
        let data = EngineIntegrationTests.generated(n, seed: 47)
        let broker = try PrivateBroker()
        defer { broker.stop() }
        let setup = try OperationsSetup(
            "ckpt-full", every: "2s", fileCopies: true, admin: true, brokers: broker.address)
        let port = try #require(setup.adminPort)
        let directory = setup.directory.appendingPathComponent("checkpoints").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try await offPool { try setup.produce(Array(data.events[..<(n / 2)]), keys: Array(data.cards[..<(n / 2)])) }

        // A 16 MiB tmpfs over the checkpoint directory, seen by the engine alone: `unshare`
        // gives it a user and mount namespace of its own (no privileges needed), and the test
        // reaches the mount through /proc/PID/root.
        let mount = #"mount -t tmpfs -o size=16m vigil-test "$1" && shift && exec "$@""#
        let run = try RunningVigil(
            OperationsTests.runArguments(setup), wrapper: ["unshare", "-rm", "sh", "-c", mount, "sh", directory])
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        let seen = "/proc/\(run.process.processIdentifier)/root\(directory)"
        let first = await run.waitForStatus(port: port, timeout: .seconds(180)) {
            ($0.number("checkpoints_written") ?? 0) >= 1 && ($0.number("events") ?? 0) >= Double(n / 2)
        }
        #expect(first != nil, "\(run.stderr.suffix(3000))")
        let mounted = try String(contentsOfFile: "/proc/\(run.process.processIdentifier)/mounts", encoding: .utf8)
        #expect(mounted.contains("vigil-test \(directory) tmpfs"), "the engine's checkpoint directory is the tmpfs")

        // Full: a file takes every byte left.
        let filler = seen + "/filler"
        let filled = try Self.fill(filler)
        let before = await AdminClient.status(port: port) ?? [:]
        try await offPool { try setup.produce(Array(data.events[(n / 2)...]), keys: Array(data.cards[(n / 2)...])) }
        let failing = await run.waitForStatus(port: port, timeout: .seconds(120)) {
            ($0.number("checkpoints_failed") ?? 0) >= 3 && ($0.number("events") ?? 0) >= Double(n)
        }
        #expect(failing != nil, "checkpoint copies fail and events are still read: \(run.stderr.suffix(3000))")
        let committed = await setup.waitForCommitted(atLeast: Int64(n), timeout: .seconds(120))
        #expect(committed == Int64(n), "\(run.stderr.suffix(3000))")
        #expect(run.stderr.contains("No space left on device"), "the log names the cause: \(run.stderr.suffix(3000))")
        let whileFull = try Self.checkpointFiles(seen)
        #expect(whileFull.temporary.isEmpty, "a failed write leaves no temporary file: \(whileFull.temporary)")
        #expect(whileFull.unreadable.isEmpty, "partial checkpoint files: \(whileFull.unreadable)")
        #expect(
            whileFull.newest <= (before.number("checkpoints_written").map { UInt64($0) } ?? 0) + 1,
            "no checkpoint file was added while the directory was full")

        // Freed: the next interval writes a whole file again.
        try FileManager.default.removeItem(atPath: filler)
        let writtenFull = await AdminClient.status(port: port)?.number("checkpoints_written") ?? 0
        let again = await run.waitForStatus(port: port, timeout: .seconds(120)) {
            ($0.number("checkpoints_written") ?? 0) >= writtenFull + 1
        }
        #expect(again != nil, "\(run.stderr.suffix(3000))")
        let afterwards = try Self.checkpointFiles(seen)
        #expect(afterwards.unreadable.isEmpty && afterwards.temporary.isEmpty)
        #expect(afterwards.newest > whileFull.newest, "new checkpoint files once there is room")
        run.signal(SIGTERM)
        let exit = try await offPool { run.waitExit(timeout: .seconds(90)) }
        #expect(exit == 0, "\(run.stderr.suffix(3000))")
        let failed = Int(failing?.number("checkpoints_failed") ?? 0)
        print(
            "[checkpoint-full] a \(filled >> 10) KiB filler filled the directory: \(failed) checkpoint copies failed, no partial or temporary file, offsets committed to \(committed); \(afterwards.whole) whole files afterwards, the newest sequence \(afterwards.newest)"
        )
    }

    /// Writes zeros to `path` until the file system is full; returns the bytes written.
    static func fill(_ path: String) throws -> Int {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 64 * 1024)
        var total = 0
        while true {
            let k = block.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if k <= 0 { break }
            total += k
        }
        #expect(errno == ENOSPC, "the filler stopped with errno \(errno), not ENOSPC")
        return total
    }

    /// The checkpoint directory's files: whole checkpoints (each decoded), unreadable ones,
    /// temporary files left, and the newest sequence.
    static func checkpointFiles(_ directory: String) throws -> (
        whole: Int, unreadable: [String], temporary: [String], newest: UInt64
    ) {
        var whole = 0
        var unreadable: [String] = []
        var newest: UInt64 = 0
        let names = try FileManager.default.contentsOfDirectory(atPath: directory)
        for name in names where name.hasSuffix(".vgck") && !name.hasPrefix(".") {
            let bytes = [UInt8](FileManager.default.contents(atPath: directory + "/" + name) ?? Data())
            if let c = try? EngineCheckpoint.decode(bytes, topology: "ops-test") {
                whole += 1
                newest = max(newest, c.sequence)
            } else {
                unreadable.append(name)
            }
        }
        return (whole, unreadable, names.filter { $0.hasSuffix(".tmp") }, newest)
    }
}
