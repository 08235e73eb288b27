import Foundation
import Synchronization

/// Watches one file by polling its size, modification time and inode twice a second (an editor
/// that saves by renaming a new file over the old one is seen too), and calls `onChange` on its
/// own thread once the file has stopped changing: a change is reported when two polls in a row
/// agree, so a save in progress is not read half-written.
public final class FileWatcher: Sendable {
    public let path: String
    private let interval: Duration
    private let stopped = Atomic<Bool>(false)
    private let onChange: @Sendable () -> Void

    public init(path: String, interval: Duration = .milliseconds(500), onChange: @escaping @Sendable () -> Void) {
        self.path = path
        self.interval = interval
        self.onChange = onChange
    }

    /// Starts polling on a thread of its own.
    public func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "vigil-topology-watch"
        thread.start()
    }

    public func stop() { stopped.store(true, ordering: .releasing) }

    private struct Stamp: Equatable {
        var size: Int64
        var modified: Int
        var inode: UInt64
    }

    private func stamp() -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Stamp(
            size: Int64(st.st_size), modified: st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec,
            inode: UInt64(st.st_ino))
    }

    private func loop() {
        var seen = stamp()
        var candidate: Stamp?
        let micros = UInt32(interval.wholeMilliseconds * 1000)
        while !stopped.load(ordering: .acquiring) {
            usleep(micros)
            let now = stamp()
            if now == seen {
                candidate = nil
                continue
            }
            if let now, now == candidate {
                seen = now
                candidate = nil
                onChange()
            } else {
                candidate = now
            }
        }
    }
}
