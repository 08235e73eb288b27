import Foundation
import Testing
import VigilTestKit

/// The built `vigil` binary, as a user runs it.
@Suite(.ownThread, .serialized) struct CLITests {
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
        #expect(
            r.stderr.contains(
                "\(fixture):21:27: models[0].kind: unknown model kind 'isolation_forrest'; did you mean 'isolation_forest'?"
            ))
    }

    /// A closed loopback port: no broker there, so doctor must say so and exit 1, not hang or crash.
    @Test(.timeLimit(.minutes(10))) func doctorFailsClearlyWithoutABroker() throws {
        let r = try CLI.run(["doctor", "--brokers", "127.0.0.1:1", "--timeout", "5"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("doctor: failed: brokerUnavailable") || r.stderr.contains("doctor: failed: timedOut"))
    }
}

/// Commands that talk to the real local broker.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
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
        let text = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8
        )
        .replacingOccurrences(of: "payments", with: "\(name)-payments")
        .replacingOccurrences(of: "partitions: 4", with: "partitions: 3")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name).yaml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let first = try CLI.run(["create-topics", file.path, "--brokers", try TestBroker.address()])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").filter { $0.hasPrefix("created: ") }.count == 6)
        #expect(first.stdout.contains("created: \(name)-payments-alerts"))
        let second = try CLI.run(["create-topics", file.path, "--brokers", try TestBroker.address()])
        #expect(second.stdout.split(separator: "\n").filter { $0.hasPrefix("exists : ") }.count == 6)
    }

    /// `generate` then `replay`, as the README shows them: files in, files out, a summary on
    /// standard error with the quality against the labels.
    @Test(.timeLimit(.minutes(10))) func generateThenReplayWritesScoresAlertsAndASummary() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let events = dir.appendingPathComponent("events.jsonl").path
        let labels = dir.appendingPathComponent("labels.jsonl").path
        let g = try CLI.run(["generate", "--events", "20000", "--seed", "9", "--output", events, "--labels", labels])
        #expect(g.status == 0, "\(g.stderr)")
        #expect(g.stderr.contains("generate: 20000 events, 20000 labels"))
        let scores = dir.appendingPathComponent("scores.jsonl").path
        let alerts = dir.appendingPathComponent("alerts.jsonl").path
        let r = try CLI.run([
            "replay", "--topology", "topologies/card-payments.yaml", "--input", events, "--labels", labels, "--scores",
            scores,
            "--alerts", alerts, "--workers", "2",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("20000 events in"))
        #expect(r.stderr.contains("labels 20000 received, 20000 joined"))
        #expect(r.stderr.contains("ROC-AUC 0."))
        let lines = try String(contentsOfFile: scores, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 20000)
        #expect(lines.first?.hasPrefix(#"{"id":"t9-1","score":"#) == true)
    }

    @Test func replayRefusesAnInvalidTopologyAndAMissingInput() throws {
        let bad = try CLI.run([
            "replay", "--topology", "Tests/VigilEngineTests/Fixtures/invalid/many-problems.yaml", "--input",
            "/nonexistent",
        ])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("invalid: Tests/VigilEngineTests/Fixtures/invalid/many-problems.yaml"))
        let missing = try CLI.run([
            "replay", "--topology", "topologies/card-payments.yaml", "--input", "/nonexistent/events.jsonl",
        ])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("replay: cannot open /nonexistent/events.jsonl"))
        let neither = try CLI.run(["generate", "--events", "10"])
        #expect(neither.status != 0)
        #expect(neither.stderr.contains("give --output (and --labels) or --brokers"))
    }

    /// `run` against the test broker, as the demo runs it: events from `generate --brokers`,
    /// stopped by `--events`, with a summary and the acknowledged outputs.
    @Test(
        .timeLimit(.minutes(10)),
        .enabled(
            if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
    func runProcessesWhatGenerateProducedAndStops() throws {
        let brokers = try TestBroker.address()
        let id = TestBroker.unique("cli")
        var text = try String(
            contentsOfFile: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path,
            encoding: .utf8)
        for (old, new) in [
            ("topics: [payments]", "topics: [\(id)-payments]"), ("payments-labels", "\(id)-labels"),
            ("payments-alerts", "\(id)-alerts"),
            ("payments-dlq", "\(id)-dlq"), ("group: vigil-card-payments", "group: \(id)"),
            ("vigil-card-payments-checkpoints", "\(id)-ck"),
        ] {
            text = text.replacingOccurrences(of: old, with: new)
        }
        let topology = FileManager.default.temporaryDirectory.appendingPathComponent("\(id).yaml").path
        try text.write(toFile: topology, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: topology) }
        #expect(try CLI.run(["create-topics", topology, "--brokers", brokers]).status == 0)
        let g = try CLI.run([
            "generate", "--brokers", brokers, "--topic", "\(id)-payments", "--labels-topic", "\(id)-labels", "--events",
            "5000",
        ])
        #expect(g.status == 0, "\(g.stderr)")
        let r = try CLI.run([
            "run", "--topology", topology, "--brokers", brokers, "--events", "5000", "--log-level", "warning",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("run of card-payments: 5000 events"))
        #expect(r.stderr.contains("dead letters 0"))
        #expect(r.stderr.contains("published and acknowledged:"))
    }
}
