import Foundation
import Testing
import VigilTestKit

/// The test kit's `.ownThread` trait: a suite's tests run on threads of their own, off the
/// cooperative pool, so one test's blocking work cannot starve the others.
@Suite(.ownThread) struct OwnThreadTests {
    let initThread = threadName()

    @Test func theBodyAndTheSuitesInitRunOnTheTestsOwnThread() async throws {
        #expect(threadName() == "theBodyAndTheSu")
        #expect(initThread == "theBodyAndTheSu")
        try await Task.sleep(for: .milliseconds(10))
        #expect(threadName() == "theBodyAndTheSu", "resumed on the same thread after an await")
    }

    @Test func childTasksShareTheThreadAndUnstructuredTasksUseThePool() async throws {
        let children = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<3 { group.addTask { threadName() } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(children == Array(repeating: "childTasksShare", count: 3))
        #expect(await Task { threadName() }.value == nil)
    }
}

private func threadName() -> String? { OwnThread.currentTest() }
