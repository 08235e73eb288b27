import ArgumentParser
import Foundation
import Synchronization
import VigilCore

/// `--progress`: whether `generate` and `run` show their rates while they work.
struct ProgressOption: ParsableArguments {
    @Option(
        help:
            "Show rates while working: auto (when standard error is a terminal and logs are text), always (a line every second, also to a file or pipe), never."
    )
    var progress: Mode = .auto

    /// When the progress line is shown.
    enum Mode: String, ExpressibleByArgument, CaseIterable {
        case auto, always, never
    }

    /// The line to draw on, or nil when progress is off.
    func line(logFormat: LogOption.LogFormat) -> TerminalLine? {
        let terminal = isatty(2) == 1
        switch progress {
        case .never: return nil
        case .always: return TerminalLine(redraw: terminal)
        case .auto: return terminal && logFormat == .text ? TerminalLine(redraw: true) : nil
        }
    }
}

/// A status line at the bottom of standard error. On a terminal it is redrawn in place and
/// cleared before anything else is printed; elsewhere each update is a line of its own.
final class TerminalLine: Sendable {
    /// Redraw in place (a terminal) rather than append lines.
    let redraw: Bool
    private let shown = Mutex<String?>(nil)

    init(redraw: Bool) { self.redraw = redraw }

    /// Shows `text` as the current status.
    func show(_ text: String) {
        shown.withLock { current in
            current = text
            write(redraw ? "\r\u{1B}[K" + text : text + "\n", to: .standardError)
        }
    }

    /// Prints `line` to `handle` with the status line out of its way, then draws the status
    /// again; false when the write failed (a closed pipe).
    @discardableResult
    func above(_ line: String, to handle: FileHandle) -> Bool {
        shown.withLock { current in
            if redraw, current != nil { write("\r\u{1B}[K", to: .standardError) }
            let ok = write(line, to: handle)
            if redraw, let current { write("\r\u{1B}[K" + current, to: .standardError) }
            return ok
        }
    }

    /// Removes the status line (before a summary).
    func clear() {
        shown.withLock { current in
            if redraw, current != nil { write("\r\u{1B}[K", to: .standardError) }
            current = nil
        }
    }

    @discardableResult
    private func write(_ text: String, to handle: FileHandle) -> Bool {
        do {
            try handle.write(contentsOf: Data(text.utf8))
            return true
        } catch {
            return false
        }
    }
}

/// Rates between two readings of running counts, for progress lines.
struct RateMeter {
    private var last: (at: ContinuousClock.Instant, counts: [Int])

    init(_ counts: [Int]) { last = (.now, counts) }

    /// Per-second rates of each count since the previous call.
    mutating func rates(_ counts: [Int]) -> [Double] {
        let now = ContinuousClock.now
        let seconds = max(1e-9, (now - last.at).seconds)
        let out = zip(counts, last.counts).map { Double($0 - $1) / seconds }
        last = (now, counts)
        return out
    }
}

/// A count with thousands separators (`1,234,567`), for progress lines.
func grouped(_ n: Int) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return n < 0 ? "-" + out : out
}
