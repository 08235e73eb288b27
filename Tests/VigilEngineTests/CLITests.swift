import Foundation
import Testing
import VigilTestKit

/// The built `vigil` binary, as a user runs it.
@Suite struct CLITests {
    @Test func versionNamesEveryNativeLibrary() throws {
        let r = try CLI.run(["--version"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("vigil 0.1.0"))
        #expect(r.stdout.contains("librdkafka 2."))
        #expect(r.stdout.contains("liblz4 1."))
        #expect(r.stdout.contains("OpenBLAS 0."))
    }

    @Test func validateAcceptsTheShippedTopologies() throws {
        let r = try CLI.run(["validate", "topologies/card-payments.yaml", "topologies/account-takeover.yaml"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("ok: topologies/card-payments.yaml"))
        #expect(r.stdout.contains("ok: topologies/account-takeover.yaml"))
    }

    @Test func validateListsEveryProblemAndExitsNonZero() throws {
        let fixture = "Tests/VigilEngineTests/Fixtures/invalid/many-problems.yaml"
        let r = try CLI.run(["validate", "topologies/card-payments.yaml", fixture])
        #expect(r.status == 1)
        #expect(r.stdout.contains("ok: topologies/card-payments.yaml"))
        #expect(r.stderr.contains("invalid: \(fixture) (14 problems)"))
        let problems = r.stderr.split(separator: "\n").filter { $0.hasPrefix(fixture + ":") }
        #expect(problems.count == 14)
        #expect(r.stderr.contains("\(fixture):21:27: models[0].kind: unknown model kind 'isolation_forrest'; did you mean 'isolation_forest'?"))
    }

    /// A closed loopback port: no broker there, so doctor must say so and exit 1, not hang or crash.
    @Test(.timeLimit(.minutes(1))) func doctorFailsClearlyWithoutABroker() throws {
        let r = try CLI.run(["doctor", "--brokers", "127.0.0.1:1", "--timeout", "5"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("doctor: failed: brokerUnavailable") || r.stderr.contains("doctor: failed: timedOut"))
    }
}

/// Commands that talk to the real local broker.
@Suite(
    .serialized, .timeLimit(.minutes(2)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct BrokerCLITests {
    @Test func doctorRoundTripsEventsThroughTheBroker() throws {
        let r = try CLI.run(["doctor", "--brokers", try TestBroker.address(), "--count", "7"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("produced 7 events, all acknowledged by the broker"))
        #expect(r.stdout.contains("doctor: ok, 7 events produced and read back"))
        #expect(r.stdout.split(separator: "\n").filter { $0.contains("\"txn_id\":\"check-") }.count == 7)
    }

    /// A topology of unique topic names: the first run creates them all, the second finds them.
    @Test func createTopicsCreatesWhatTheTopologyNamesOnce() throws {
        let name = TestBroker.unique("ct")
        let text = try String(contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "payments", with: "\(name)-payments")
            .replacingOccurrences(of: "partitions: 4", with: "partitions: 3")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let first = try CLI.run(["create-topics", file.path, "--brokers", try TestBroker.address()])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").filter { $0.hasPrefix("created: ") }.count == 5)
        #expect(first.stdout.contains("created: \(name)-payments-alerts"))
        let second = try CLI.run(["create-topics", file.path, "--brokers", try TestBroker.address()])
        #expect(second.stdout.split(separator: "\n").filter { $0.hasPrefix("exists : ") }.count == 5)
    }
}
