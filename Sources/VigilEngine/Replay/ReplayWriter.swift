import Crypto
import Foundation
import Synchronization
import VigilCore

/// The sink of `vigil replay`: takes finished chunks from the workers (in any order), and on a
/// thread of its own writes score lines, alerts and dead letters in input order.
final class ReplayWriter: PipelineSink, @unchecked Sendable {
    // Invariant: the files and `next`/`parked` are used by the writer thread only; the queue is
    // behind `queue`'s mutex.
    private let scores: OutputFile?
    private let alerts: OutputFile?
    private let deadLetters: OutputFile?
    private let names: [String]
    private let queue = Mutex<[InputChunk]>([])
    private let ready = DispatchSemaphore(value: 0)
    private let done = DispatchSemaphore(value: 0)
    private let stopped = Atomic<Bool>(false)
    private var parked: [Int: InputChunk] = [:]
    private var next = 0
    private var failure: VigilError?
    /// Sees every chunk in input order, on the writer thread, after it is written.
    private let observer: (@Sendable (InputChunk) -> Void)?
    /// SHA-256 of every score line and of every alert line, in input order (when asked for).
    private var scoreHasher: SHA256?
    private var alertHasher: SHA256?

    init(
        scores: String?, alerts: String?, deadLetters: String?, topology: Topology, digests: Bool = false,
        observer: (@Sendable (InputChunk) -> Void)? = nil
    ) throws(VigilError) {
        self.scores = try scores.map { path throws(VigilError) in try OutputFile(path) }
        self.alerts = try alerts.map { path throws(VigilError) in try OutputFile(path) }
        self.deadLetters = try deadLetters.map { path throws(VigilError) in try OutputFile(path) }
        names = topology.models.map(\.name)
        self.observer = observer
        if digests {
            scoreHasher = SHA256()
            alertHasher = SHA256()
        }
    }

    /// The SHA-256 (hex) of the score lines and of the alert lines written, when `digests` was
    /// asked for. Call after `finish()`.
    var digests: (scores: String, alerts: String)? {
        guard let scoreHasher, let alertHasher else { return nil }
        func hex(_ h: SHA256) -> String { h.finalize().map { String(format: "%02x", $0) }.joined() }
        return (hex(scoreHasher), hex(alertHasher))
    }

    func start() {
        let thread = Thread { [self] in
            while true {
                ready.wait()
                let batch = queue.withLock { q in
                    let taken = q
                    q.removeAll(keepingCapacity: true)
                    return taken
                }
                for chunk in batch { parked[chunk.sequence] = chunk }
                while let chunk = parked.removeValue(forKey: next) {
                    write(chunk)
                    next += 1
                }
                if stopped.load(ordering: .acquiring) && queue.withLock({ $0.isEmpty }) && parked.isEmpty { break }
            }
            done.signal()
        }
        thread.name = "vigil-replay-writer"
        thread.start()
    }

    func complete(_ chunk: InputChunk) {
        queue.withLock { $0.append(chunk) }
        ready.signal()
    }

    /// Waits for every chunk to be written, then closes the files. Call after `Pipeline.finish()`.
    func finish() throws(VigilError) {
        stopped.store(true, ordering: .releasing)
        ready.signal()
        done.wait()
        for file in [scores, alerts, deadLetters] { try file?.close() }
        if let failure { throw failure }
    }

    private func write(_ chunk: InputChunk) {
        defer { observer?(chunk) }
        do throws(VigilError) {
            if scores != nil || scoreHasher != nil {
                var out: [UInt8] = []
                out.reserveCapacity(chunk.count * 120)
                for i in 0..<chunk.count { ScoreLine.append(chunk, i, names: names, to: &out) }
                scoreHasher?.update(data: out)
                try scores?.write(out)
            }
            if alerts != nil || alertHasher != nil {
                var out: [UInt8] = []
                for alert in chunk.allAlerts {
                    out += alert.json
                    out.append(0x0A)
                }
                alertHasher?.update(data: out)
                try alerts?.write(out)
            }
            if let deadLetters {
                var out: [UInt8] = []
                for (i, reason) in chunk.allDeadLetters { DeadLetterLine.append(chunk, i, reason, to: &out) }
                try deadLetters.write(out)
            }
        } catch {
            if failure == nil { failure = error }
        }
    }
}

/// One line of `--scores`: `{"id":…,"score":…,"alert":…,"models":{…}}`, or for a dead letter
/// `{"id":null,"dead_letter":"reason"}`.
enum ScoreLine {
    static func append(_ chunk: InputChunk, _ i: Int, names: [String], to out: inout [UInt8]) {
        out += #"{"id":"#.utf8
        chunk.appendIDJSON(i, to: &out)
        let outcome = chunk.outcome(i)
        if outcome == .deadLettered {
            out += #","dead_letter":"#.utf8
            let code = chunk.deadLetters[i]?.code ?? .late
            JSONText.string(code.rawValue, into: &out)
            out += "}\n".utf8
            return
        }
        out += #","score":"#.utf8
        JSONText.number(chunk.score(i), into: &out)
        out += (outcome == .alerted ? #","alert":true,"models":{"# : #","alert":false,"models":{"#).utf8
        for (m, name) in names.enumerated() {
            if m > 0 { out.append(0x2C) }
            JSONText.string(name, into: &out)
            out.append(0x3A)
            JSONText.number(chunk.modelScore(i, m), into: &out)
        }
        out += "}}\n".utf8
    }
}

/// One line of `--dead-letters`: reason, detail, position and the raw record (as a JSON string
/// when it is UTF-8, else base64 under `raw_base64`).
enum DeadLetterLine {
    static func append(_ chunk: InputChunk, _ i: Int, _ reason: DeadLetterReason, to out: inout [UInt8]) {
        let p = chunk.position(i)
        out += #"{"reason":"#.utf8
        JSONText.string(reason.code.rawValue, into: &out)
        out += #","detail":"#.utf8
        JSONText.string(reason.detail, into: &out)
        out += #","topic":"#.utf8
        JSONText.string(p.topic, into: &out)
        out += #","partition":\#(p.partition),"offset":\#(p.offset),"#.utf8
        chunk.withRawValue(i) { raw in
            guard let raw else {
                out += #""raw":null}"#.utf8
                return
            }
            if JSONScanner.isValidUTF8(raw) {
                out += #""raw":"#.utf8
                JSONText.string(String(decoding: raw, as: UTF8.self), into: &out)
            } else {
                out += #""raw_base64":""#.utf8
                out += Data(raw).base64EncodedString().utf8
                out.append(0x22)
            }
            out.append(0x7D)
        }
        out.append(0x0A)
    }
}

/// A file written through stdio's buffer; `-` is standard output. What `replay` and `generate`
/// write their JSON lines with.
public final class OutputFile: @unchecked Sendable {
    // Invariant: used by one thread at a time, closed once.
    private let handle: UnsafeMutablePointer<FILE>
    private let path: String
    private let isStdout: Bool

    public init(_ path: String) throws(VigilError) {
        self.path = path
        isStdout = path == "-"
        guard let h = isStdout ? fdopen(dup(1), "w") : fopen(path, "w") else {
            throw VigilError(.ioFailed, "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        handle = h
    }

    public func write(_ bytes: [UInt8]) throws(VigilError) {
        guard !bytes.isEmpty else { return }
        let n = bytes.withUnsafeBytes { fwrite($0.baseAddress!, 1, $0.count, handle) }
        if n != bytes.count { throw VigilError(.ioFailed, "writing \(path): \(String(cString: strerror(errno)))") }
    }

    public func close() throws(VigilError) {
        if fclose(handle) != 0 { throw VigilError(.ioFailed, "closing \(path): \(String(cString: strerror(errno)))") }
    }
}
