import Foundation
import Testing
import VigilTestKit

@testable import VigilEngine

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
        let r = try CLI.run([
            "validate", "--topology", "topologies/card-payments.yaml", "--topology", "topologies/account-takeover.yaml",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("ok: topologies/card-payments.yaml"))
        #expect(r.stdout.contains("ok: topologies/account-takeover.yaml"))
        #expect(r.stderr.isEmpty)
    }

    /// `--topology` is how every command takes its topology; the positional file of earlier
    /// releases is still read, with a warning, and nothing at all is a usage error.
    @Test func theTopologyIsAnOptionEverywhereAndThePositionalFormWarns() throws {
        let old = try CLI.run(["validate", "topologies/card-payments.yaml"])
        #expect(old.status == 0)
        #expect(old.stdout.contains("ok: topologies/card-payments.yaml"))
        #expect(old.stderr.contains("deprecated; use `vigil validate --topology FILE`"))
        let none = try CLI.run(["validate"])
        #expect(none.status == 64, "\(none.stderr)")
        #expect(none.stderr.contains("give --topology FILE"))
        let both = try CLI.run([
            "create-topics", "topologies/card-payments.yaml", "--topology", "topologies/card-payments.yaml",
        ])
        #expect(both.status == 64, "one topology, given once")
        for command in [
            "run", "replay", "evaluate", "create-topics", "validate", "checkpoints list", "models list", "alerts tail",
        ] {
            let help = try CLI.run(command.split(separator: " ").map(String.init) + ["--help"])
            #expect(help.stdout.contains("--topology <topology>"), "\(command) --help: \(help.stdout.prefix(300))")
        }
    }

    /// Durations are written as in topology files; a bare number still reads as seconds.
    @Test func durationsAreWrittenAsInTopologyFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vigil-dur-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let events = dir.appendingPathComponent("e.jsonl").path
        let labels = dir.appendingPathComponent("l.jsonl").path
        let g = try CLI.run([
            "generate", "--events", "500", "--seed", "4", "--output", events, "--labels", labels, "--label-delay",
            "1m-90s",
        ])
        #expect(g.status == 0, "\(g.stderr)")
        func times(_ path: String) throws -> [String: Int64] {
            var out: [String: Int64] = [:]
            for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                if let id = o?["txn_id"] as? String, let ts = (o?["ts"] as? NSNumber)?.int64Value { out[id] = ts }
            }
            return out
        }
        let sent = try times(events)
        let known = try times(labels)
        let delays = known.compactMap { id, t in sent[id].map { t - $0 } }
        #expect(delays.count == 500)
        #expect(delays.allSatisfy { (60_000...90_000).contains($0) }, "\(delays.min() ?? 0)…\(delays.max() ?? 0)")
        let seconds = try CLI.run([
            "generate", "--events", "10", "--output", events, "--labels", labels, "--label-delay", "60-90",
        ])
        #expect(seconds.status == 0, "bare numbers are seconds: \(seconds.stderr)")
        let reversed = try CLI.run(["generate", "--events", "10", "--output", events, "--label-delay", "2m-1m"])
        #expect(reversed.status == 64)
        #expect(reversed.stderr.contains("--label-delay must be MIN-MAX"))
        let bad = try CLI.run(["run", "--topology", "topologies/card-payments.yaml", "--duration", "10 minutes"])
        #expect(bad.status == 64, "\(bad.stderr)")
        let help = try CLI.run(["run", "--help"])
        #expect(help.stdout.contains("(default: 1m)"), "the deadline's default is shown as a duration")
    }

    @Test func validateListsEveryProblemAndExitsNonZero() throws {
        let fixture = "Tests/VigilEngineTests/Fixtures/invalid/many-problems.yaml"
        let r = try CLI.run(["validate", "--topology", "topologies/card-payments.yaml", "--topology", fixture])
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

    /// `vigil status` and `vigil reload` against a running engine, through its admin endpoint:
    /// the status names the topology and its models and says ready; a threshold edit reloads as
    /// applied, an invalid one is refused with exit status 2, and without the token nothing
    /// happens.
    @Test func statusAndReloadTalkToARunningEngine() async throws {
        let setup = try OperationsSetup("cli-admin", every: "1h", admin: true)
        let data = EngineIntegrationTests.generated(5_000, seed: 8)
        try setup.produce(data.events, keys: data.cards)
        let token = ["VIGIL_TEST_ADMIN_TOKEN": "s3cret"]
        let run = try RunningVigil(OperationsTests.runArguments(setup, ["--log-format", "json"]), environment: token)
        defer { if run.process.isRunning { run.signal(SIGKILL) } }
        var status = try CLI.run(["status", "--topology", setup.file])
        let deadline = ContinuousClock.now + .seconds(90)
        while status.status != 0 || !status.stdout.contains("events 5000 read"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            status = try CLI.run(["status", "--topology", setup.file])
        }
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.hasPrefix("ops-test  ready  (running)"), "\(status.stdout)")
        #expect(status.stdout.contains("events 5000 read"))
        #expect(status.stdout.contains("model iforest active iforest@"))
        let json = try CLI.run(["status", "--topology", setup.file, "--json"])
        #expect(
            (try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])?["topology"] as? String
                == "ops-test")

        try setup.write(targetRate: "0.02")
        let denied = try CLI.run(["reload", "--topology", setup.file])
        #expect(denied.status == 1 && denied.stderr.contains("no admin token"), "\(denied.stderr)")
        let applied = try CLI.run(["reload", "--topology", setup.file], environment: token)
        #expect(applied.status == 0, "\(applied.stderr)")
        #expect(applied.stdout.contains("reload: applied"))
        #expect(applied.stdout.contains("threshold.target_alert_rate: 0.005 → 0.02"), "\(applied.stdout)")
        let again = try CLI.run(["reload", "--topology", setup.file], environment: token)
        #expect(again.status == 0 && again.stdout.contains("reload: unchanged"), "\(again.stdout)")
        try setup.write(targetRate: "3")
        let invalid = try CLI.run(["reload", "--topology", setup.file], environment: token)
        #expect(invalid.status == 2, "stdout: \(invalid.stdout) stderr: \(invalid.stderr)")
        #expect(invalid.stderr.contains("reload: invalid") && invalid.stderr.contains("target_alert_rate"))
        run.signal(SIGTERM)
        #expect(run.waitExit(timeout: .seconds(60)) == 0)
        // --log-format json: every line on standard error is one JSON object.
        let lines = run.stderr.split(separator: "\n").filter { !$0.isEmpty }
        let logs = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!lines.isEmpty && logs.count == lines.count, "\(lines.filter { !$0.hasPrefix("{") }.prefix(3))")
        #expect(logs.contains { $0["message"] as? String == "Partitions assigned" && $0["level"] as? String == "info" })
        #expect(logs.allSatisfy { ($0["time"] as? String)?.hasSuffix("Z") == true && $0["logger"] is String })
    }

    /// `vigil alerts tail` follows the alerts topic while an engine writes to it, and with
    /// `--no-follow` prints what is there and stops: the same alert ids as on the topic.
    @Test func alertsTailFollowsTheAlertsTopic() throws {
        let setup = try OperationsSetup("cli-tail", every: "1h")
        let data = EngineIntegrationTests.generated(20_000, seed: 13)
        try setup.produce(data.events, keys: data.cards)
        let tail = try RunningVigil(["alerts", "tail", "--topology", setup.file, "--last", "0", "--count", "3"])
        defer { if tail.process.isRunning { tail.signal(SIGKILL) } }
        let run = try RunningVigil(OperationsTests.runArguments(setup, ["--events", "20000"]))
        #expect(run.waitExit(timeout: .seconds(120)) == 0, "\(run.stderr.suffix(500))")
        #expect(tail.waitExit(timeout: .seconds(60)) == 0, "\(tail.stderr)")
        let ids = Set(try setup.alertIDs())
        #expect(ids.count >= 3)
        let followed = tail.stdout.split(separator: "\n").filter { $0.hasPrefix("ALERT ") }
        #expect(followed.count == 3, "\(tail.stdout)")
        #expect(followed.allSatisfy { line in ids.contains { line.hasSuffix("[\($0)]") } })
        let all = try CLI.run(["alerts", "tail", "--topology", setup.file, "--last", "100000", "--no-follow", "--json"])
        #expect(all.status == 0, "\(all.stderr)")
        let read = all.stdout.split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["alert_id"] as? String
        }
        #expect(Set(read) == ids && read.count == ids.count)
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
        let first = try CLI.run(["create-topics", "--topology", file.path, "--brokers", try TestBroker.address()])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.split(separator: "\n").filter { $0.hasPrefix("created: ") }.count == 6)
        #expect(first.stdout.contains("created: \(name)-payments-alerts"))
        let second = try CLI.run(["create-topics", "--topology", file.path, "--brokers", try TestBroker.address()])
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
            "5000", "--progress", "always",
        ])
        #expect(g.status == 0, "\(g.stderr)")
        // Off a terminal, `--progress always` appends a line per second (and generate's last).
        #expect(g.stderr.contains("generate: 5,000 events ("), "\(g.stderr)")
        #expect(g.stderr.contains(" acknowledged ("), "\(g.stderr)")
        let r = try CLI.run([
            "run", "--topology", topology, "--brokers", brokers, "--events", "5000", "--log-level", "warning",
            "--progress", "always",
        ])
        #expect(r.status == 0, "\(r.stderr)")
        // The group join alone takes seconds, so at least one line was drawn.
        let progress = r.stderr.split(separator: "\n").filter { $0.hasPrefix("run: ") && $0.contains(" events (") }
        #expect(!progress.isEmpty, "\(r.stderr)")
        #expect(progress.allSatisfy { $0.contains("/s), ") && $0.contains(" dead letters, lag ") })
        #expect(r.stderr.contains("run of card-payments: 5000 events"))
        #expect(r.stderr.contains("dead letters 0"))
        #expect(r.stderr.contains("published and acknowledged:"))
    }
}
