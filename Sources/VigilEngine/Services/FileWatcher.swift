import Foundation
import ServiceLifecycle

/// Watches one file by polling its size, modification time and inode (an editor that saves by
/// renaming a new file over the old one is seen too, and so is Kubernetes' `..data` symlink
/// swap), and calls `onChange` once the file has stopped changing: a change is reported when two
/// polls in a row agree, so a save in progress is not read half-written.
///
/// A `Service`: it polls every `interval` of its clock until the group shuts down or its task is
/// cancelled.
public struct FileWatcher: Service {
    public let path: String
    private let interval: Duration
    private let clock: EngineClock
    private let onChange: @Sendable () async -> Void

    public init(
        path: String, interval: Duration = .milliseconds(500), clock: EngineClock = .continuous,
        onChange: @escaping @Sendable () async -> Void
    ) {
        self.path = path
        self.interval = interval
        self.clock = clock
        self.onChange = onChange
    }

    /// What identifies one version of the file.
    struct Stamp: Equatable {
        var size: Int64
        var modified: Int
        var inode: UInt64
    }

    func stamp() -> Stamp? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Stamp(
            size: Int64(st.st_size), modified: st.st_mtim.tv_sec * 1_000_000_000 + st.st_mtim.tv_nsec,
            inode: UInt64(st.st_ino))
    }

    public func run() async throws {
        let first = stamp()
        do {
            try await cancelWhenGracefulShutdown {
                var seen = first
                var candidate: Stamp?
                while true {
                    try await clock.sleep(for: interval)
                    let now = stamp()
                    if now == seen {
                        candidate = nil
                    } else if let now, now == candidate {
                        seen = now
                        candidate = nil
                        await onChange()
                    } else {
                        candidate = now
                    }
                }
            }
        } catch {
            return  // cancelled: the group is shutting down
        }
    }
}
