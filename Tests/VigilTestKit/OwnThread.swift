import Foundation
import Testing

/// Runs each test of a suite on a thread of its own, so that the blocking work of one test
/// (starting a broker, producing, a long computation) never holds one of the cooperative pool's
/// threads, which on a 2-core machine are only two and also run every other suite's awaits.
///
/// Add `.ownThread` to a suite's traits. The test body, and the suite's `init`, run on the
/// test's thread through a task executor preference. Child tasks (`async let`, task groups)
/// inherit it and share that one thread; unstructured tasks still go to the global pool.
public struct OwnThread: SuiteTrait, TestTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        guard testCase != nil else { return try await function() }
        let executor = ThreadExecutor(name: String(test.name.prefix(15)))
        defer { executor.finish() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension OwnThread {
    static let key = "vigil.ownThread"

    /// The name of the test whose own thread this is (its first 15 characters), or nil on any
    /// other thread. Synchronous: where an async function runs is a matter of its executor.
    public static func currentTest() -> String? { Thread.current.threadDictionary[key] as? String }
}

extension Trait where Self == OwnThread {
    /// Each test runs on a thread of its own (see ``OwnThread``).
    public static var ownThread: Self { OwnThread() }
}

/// A task executor with one thread, which runs its jobs in the order they came.
///
/// The queue is guarded by the condition's own lock, a pthread mutex, which the thread sanitizer
/// sees. CI's sanitizer run once reported a race on a queue guarded by Synchronization's `Mutex`,
/// with both accesses inside it: the sanitizer listed only the condition as held.
final class ThreadExecutor: TaskExecutor, @unchecked Sendable {
    private let ready = NSCondition()
    /// Guarded by `ready`.
    private var jobs: [UnownedJob] = []
    /// Guarded by `ready`.
    private var finished = false

    init(name: String) {
        let thread = Thread { [self] in loop(name: name) }
        thread.stackSize = 8 << 20
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        ready.lock()
        let accepted = !finished
        if accepted {
            jobs.append(job)
            ready.signal()
        }
        ready.unlock()
        if !accepted {
            // A job that comes after the test's scope ended still runs, on a thread of its own.
            let executor = asUnownedTaskExecutor()
            Thread { job.runSynchronously(on: executor) }.start()
        }
    }

    /// Lets the thread end once the jobs already queued have run.
    func finish() {
        ready.lock()
        finished = true
        ready.signal()
        ready.unlock()
    }

    private func loop(name: String) {
        Thread.current.name = name
        Thread.current.threadDictionary[OwnThread.key] = name
        let executor = asUnownedTaskExecutor()
        while true {
            ready.lock()
            while jobs.isEmpty && !finished { ready.wait() }
            let next = jobs
            let done = finished
            jobs.removeAll(keepingCapacity: true)
            ready.unlock()
            for job in next { job.runSynchronously(on: executor) }
            if done && next.isEmpty { return }
        }
    }
}
