import Foundation
import Synchronization
import Testing
import VigilCore
import VigilEngine
import VigilKafka
import VigilModels
import VigilSynthetic
import VigilTestKit

/// The model lifecycle against the local broker: live per-model quality, promotion and
/// rollback, and the guard.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct RolloutTests {
    /// Label records by event id.
    static func labelsByID(_ labels: [[UInt8]]) -> [String: Bool] {
        var out: [String: Bool] = [:]
        for l in labels {
            guard let o = try? JSONSerialization.jsonObject(with: Data(l)) as? [String: Any],
                let id = o["txn_id"] as? String, let fraud = o["is_fraud"] as? Bool
            else { continue }
            out[id] = fraud
        }
        return out
    }

    @Test func aShadowsLiveFiguresEqualThoseRecomputedFromItsScoresAndLabels() async throws {
        let models =
            RolloutSetup.forest("iforest", role: "active") + "\n" + RolloutSetup.regression(role: "active") + "\n"
            + RolloutSetup.forest("challenger", role: "shadow", trees: 30, seed: 11)
        let setup = try RolloutSetup("shadow", models: models)
        let data = EngineIntegrationTests.generated(30_000, seed: 5)
        let live = try LiveEngine(setup)
        // The labels after their events: a label read before its event waits in a table that
        // keeps one label per slot (docs/alerts.md), and the comparison needs every label joined.
        try await offPool { try setup.produce(data.events, keys: data.cards) }
        #expect(await live.waitFor(events: data.events.count))
        try await offPool { try setup.produce([], keys: [], labels: data.labels) }
        #expect(await live.waitFor(events: data.events.count, labels: data.labels.count))
        let quality = await live.engine.rollout.quality()
        let status = StatusJSON.render(live.engine, models: quality)
        let metrics = MetricsText.render(live.engine, models: quality)
        try await live.stop()

        // Offline: the shadow's score and own-threshold flag of every labelled event, from the
        // run's own chunks.
        let labels = Self.labelsByID(data.labels)
        let k = 2
        var scores: [Double] = []
        var truth: [Bool] = []
        var flagged: [Bool] = []
        for chunk in live.chunks.withLock({ $0 }) {
            for i in 0..<chunk.count {
                guard let id = chunk.idText(i), let label = labels[id] else { continue }
                scores.append(chunk.modelScore(i, k))
                truth.append(label)
                flagged.append(chunk.modelFlagged(i, k))
            }
        }
        let offline = PrequentialMetrics.report(scores: scores, labels: truth, alerted: flagged)
        let shadow = try #require(quality.first { $0.name == "challenger" })
        print(
            "[rollout] shadow: \(shadow.labelled) labelled, AUC \(shadow.rocAUC ?? .nan), AP \(shadow.averagePrecision ?? .nan), F1 \(shadow.f1 ?? .nan), overlap \(shadow.alertOverlap ?? .nan), rank corr \(shadow.rankCorrelation ?? .nan)"
        )
        #expect(shadow.role == .shadow)
        #expect(shadow.labelled == offline.events && shadow.labelled > 10_000)
        #expect(shadow.positives == offline.positives && shadow.positives > 0)
        func same(_ a: Double?, _ b: Double?) -> Bool {
            guard let a, let b else { return a == nil && b == nil }
            return abs(a - b) < 1e-12
        }
        #expect(same(shadow.rocAUC, offline.rocAUC))
        #expect(same(shadow.averagePrecision, offline.averagePrecision))
        #expect(same(shadow.precision, offline.precision))
        #expect(same(shadow.recall, offline.recall))
        #expect(same(shadow.f1, offline.f1))
        #expect(shadow.alertOverlap != nil && shadow.rankCorrelation != nil)

        // The same figures in /status and /metrics.
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        let entry = try #require(
            (parsed["models"] as? [[String: Any]])?.first { $0["name"] as? String == "challenger" })
        let q = try #require(entry["quality"] as? [String: Any])
        #expect(same(q["roc_auc"] as? Double, offline.rocAUC))
        #expect(same(q["average_precision"] as? Double, offline.averagePrecision))
        #expect(same(q["f1"] as? Double, offline.f1))
        #expect(q["role"] as? String == "shadow")
        let line = try #require(
            metrics.split(separator: "\n").first {
                $0.hasPrefix("vigil_model_roc_auc{") && $0.contains("model=\"challenger\"")
                    && $0.contains("role=\"shadow\"")
                    && $0.contains("version=\"challenger@")
            })
        #expect(same(Double(line.split(separator: " ").last ?? ""), offline.rocAUC))
    }

    /// iforest alerts; challenger waits as a shadow; lr (a shadow too) only brings the labels.
    static let swapModels =
        RolloutSetup.forest("iforest", role: "active") + "\n"
        + RolloutSetup.forest("challenger", role: "shadow", trees: 30, seed: 11, extra: "    replaces: [iforest]")
        + "\n"
        + RolloutSetup.regression(role: "shadow")

    @Test func promotionSwapsWhoAlertsAndRollbackBringsThePreviousModelBackWarm() async throws {
        let n = 30_000
        let data = EngineIntegrationTests.generated(n, seed: 9)
        let reference = try RolloutSetup("never", models: Self.swapModels)
        let swapped = try RolloutSetup(
            "swap", source: reference.source, labels: reference.labels, models: Self.swapModels)
        func part(_ k: Int) -> (events: [[UInt8]], cards: [String]) {
            let r = (k * n / 3)..<((k + 1) * n / 3)
            return (Array(data.events[r]), Array(data.cards[r]))
        }
        // The run that promotes and rolls back reads the input in thirds: promote after the
        // first, roll back after the second.
        let live = try LiveEngine(swapped)
        for k in 0..<3 {
            let p = part(k)
            try await offPool { try reference.produce(p.events, keys: p.cards) }
            #expect(await live.waitFor(events: (k + 1) * n / 3))
            if k == 0 {
                let event = try await live.engine.rollout.promote("challenger", by: "tester", reason: "try it")
                #expect(event.activated.map { $0.prefix { $0 != "@" } } == ["challenger"])
                #expect(event.deactivated.map { $0.prefix { $0 != "@" } } == ["iforest"])
                #expect(live.engine.topology.models.map(\.role) == [.shadow, .active, .shadow])
            } else if k == 1 {
                let event = try await live.engine.rollout.rollback(nil, by: "tester", reason: "worse")
                #expect(event.action == .rollback)
                #expect(live.engine.topology.models.map(\.role) == [.active, .shadow, .shadow])
            }
        }
        try await live.stop()
        let never = try LiveEngine(reference, stopAfterEvents: n)
        #expect(await never.waitFor(events: n))
        try await never.stop()

        func byOffset(_ chunks: [InputChunk]) -> [Int64: (score: Double, forest: Double, alert: String?)] {
            var out: [Int64: (Double, Double, String?)] = [:]
            for c in chunks {
                let alerts = Dictionary(c.allAlerts.map { ($0.index, String(decoding: $0.json, as: UTF8.self)) }) { $1 }
                for i in 0..<c.count { out[c.position(i).offset] = (c.score(i), c.modelScore(i, 0), alerts[i]) }
            }
            return out
        }
        let swappedChunks = live.chunks.withLock { $0 }
        #expect(swappedChunks.map(\.count).reduce(0, +) == n, "no offset was read twice: nothing was rewound")
        let a = byOffset(never.chunks.withLock { $0 })
        let b = byOffset(swappedChunks)
        #expect(a.count == n && b.count == n)
        // The demoted forest kept learning as a shadow: its scores never differ, and once it is
        // back the final scores are those of the run that never promoted.
        var forestDiffers = 0
        var finalDiffers = 0
        for offset in 0..<Int64(n) {
            guard let x = a[offset], let y = b[offset] else { continue }
            if x.forest != y.forest { forestDiffers += 1 }
            if offset >= Int64(2 * n / 3), x.score != y.score { finalDiffers += 1 }
        }
        #expect(forestDiffers == 0)
        #expect(finalDiffers == 0)
        // While promoted, the challenger is the active model in every alert.
        let middle = (Int64(n / 3 + 2000)..<Int64(2 * n / 3)).compactMap { b[$0]?.alert }
        #expect(middle.count > 20)
        #expect(middle.allSatisfy { $0.contains(#""challenger":{"score""#) && $0.contains(#""role":"active"}"#) })
        let roles = middle.compactMap { json -> String? in
            let o = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
            return ((o?["models"] as? [String: Any])?["challenger"] as? [String: Any])?["role"] as? String
        }
        #expect(roles.count == middle.count && roles.allSatisfy { $0 == "active" })

        let audit = try swapped.rolloutRecords()
        #expect(audit.map { $0["action"] as? String } == ["promote", "rollback"])
        #expect(audit.allSatisfy { $0["by"] as? String == "tester" && $0["metrics"] is [String: Any] })
        #expect(audit.first?["reason"] as? String == "try it")
    }

    @Test func aPromotionByCommandSurvivesSIGKILLAndRollbackUndoesIt() async throws {
        let setup = try RolloutSetup("kill", models: Self.swapModels)
        let token = ["VIGIL_TEST_ADMIN_TOKEN": "s3cret"]
        let arguments = ["run", "--topology", setup.file, "--workers", "2", "--no-watch", "--log-level", "info"]
        let data = EngineIntegrationTests.generated(20_000, seed: 17)
        let half = data.events.count / 2
        try await offPool { try setup.produce(Array(data.events[..<half]), keys: Array(data.cards[..<half])) }
        func models(_ status: [String: any Sendable]) -> [String: String] {
            var out: [String: String] = [:]
            for case let m as [String: any Sendable] in (status["models"] as? [any Sendable]) ?? [] {
                if let name = m["name"] as? String { out[name] = m["role"] as? String }
            }
            return out
        }
        func vigil(_ args: [String]) async throws -> CLI.Result {
            try await offPool { try CLI.run(args + ["--topology", setup.file], environment: token) }
        }

        let first = try RunningVigil(arguments, environment: token)
        let running = await first.waitForStatus(port: setup.adminPort) { $0.number("events") ?? 0 >= Double(half) }
        #expect(running != nil, "\(first.stderr.suffix(3000))")
        let refused = try await offPool { try CLI.run(["models", "promote", "challenger", "--topology", setup.file]) }
        #expect(refused.status != 0 && refused.stderr.contains("401"), "no token, no promotion: \(refused.stderr)")
        let promoted = try await vigil([
            "models", "promote", "challenger", "--by", "tester", "--reason", "canary looked good",
        ])
        #expect(promoted.status == 0, "\(promoted.stderr)")
        #expect(promoted.stdout.contains("\"action\" : \"promote\""), "\(promoted.stdout)")
        first.signal(SIGKILL)
        _ = try await offPool { first.waitExit(timeout: .seconds(30)) }

        // Restarted: the promotion is in force before any new event.
        let second = try RunningVigil(arguments, environment: token)
        let restarted = await second.waitForStatus(port: setup.adminPort) { $0.text("phase") == "running" }
        let restartedStatus = try #require(restarted, "\(second.stderr.suffix(3000))")
        #expect(models(restartedStatus) == ["iforest": "shadow", "challenger": "active", "lr": "shadow"])
        try await offPool {
            try setup.produce(Array(data.events[half...]), keys: Array(data.cards[half...]))
        }
        _ = await second.waitForStatus(port: setup.adminPort) {
            $0.number("events") ?? 0 >= Double(data.events.count - half)
        }
        let list = try await vigil(["models", "list"])
        #expect(list.status == 0, "\(list.stderr)")
        print("[rollout] vigil models list:\n\(list.stdout)")
        let rows = list.stdout.split(separator: "\n")
        #expect(rows.first?.hasPrefix("MODEL") == true && rows.count == 4, "\(list.stdout)")
        #expect(rows.contains { $0.hasPrefix("challenger") && $0.contains(" active ") }, "\(list.stdout)")
        let history = try await vigil(["models", "history"])
        #expect(history.stdout.contains("canary looked good"), "\(history.stdout)")

        let rolledBack = try await vigil(["models", "rollback", "--by", "tester", "--reason", "alert volume"])
        #expect(rolledBack.status == 0, "\(rolledBack.stderr)")
        let after = try #require(await AdminClient.status(port: setup.adminPort))
        #expect(models(after) == ["iforest": "active", "challenger": "shadow", "lr": "shadow"])
        second.signal(SIGTERM)
        #expect(try await offPool { second.waitExit(timeout: .seconds(60)) } == 0, "\(second.stderr.suffix(3000))")

        // Alerts of the second half (after the restart, before the rollback) were the challenger's.
        let alerts = try TopicReader.readAll(brokers: setup.brokers, topic: setup.alerts).compactMap { m in
            m.value.flatMap { try? JSONSerialization.jsonObject(with: Data($0)) as? [String: Any] }
        }
        let late = alerts.filter { (($0["source"] as? [String: Any])?["offset"] as? Int ?? 0) >= half }
        #expect(late.count >= 5, "too few alerts to tell who decided them")
        #expect(
            late.allSatisfy {
                (($0["models"] as? [String: Any])?["challenger"] as? [String: Any])?["role"] as? String == "active"
            })
        let audit = try setup.rolloutRecords()
        #expect(audit.map { $0["action"] as? String } == ["promote", "rollback"])
        #expect(audit.map { $0["reason"] as? String } == ["canary looked good", "alert volume"])
    }

    /// iforest alerts; a regression waits as a shadow; a forest of one tree of 16 events is a
    /// canary for half the cards.
    static func guardModels() -> String {
        RolloutSetup.forest("iforest", role: "active") + "\n"
            + RolloutSetup.regression(role: "shadow", extra: "    replaces: [iforest]") + "\n"
            + RolloutSetup.forest(
                "weak", role: "canary", trees: 1, sample: 16, seed: 3, extra: "    share: 0.5\n    replaces: [iforest]")
    }

    @Test(arguments: [true, false]) func theGuardRollsBackAWeakCanaryAndPromotesABetterShadowOnlyWhenAsked(
        autoPromote: Bool
    ) async throws {
        let minLabels = 5000
        let setup = try RolloutSetup(
            "guard", models: Self.guardModels(),
            extra: """
                guard:
                  metric: roc_auc
                  min_labels: \(minLabels)
                  auto_promote: \(autoPromote)
                  check_every: 100ms
                """)
        let live = try LiveEngine(setup)
        let guarding = Task { try await RolloutGuard(engine: live.engine).run() }
        await live.engine.waitFor(.running)
        // Labels come among the events, seconds of event time after them, as a stream's would.
        var config = TransactionStream.Config()
        config.events = 60_000
        config.seed = 13
        config.cards = 3000
        config.driftAt = nil
        config.labelDelayMs = 1000...20_000
        let stream = config
        let sent = try await offPool { try setup.produceStream(stream, rate: 8000) }
        #expect(await live.waitFor(events: sent.events, labels: sent.labels))
        // The guard's last look may still be promoting: a promotion goes through the workers.
        // Its looks can also wait behind the canary's rollback, which waits for its checkpoint,
        // and so for the broker to acknowledge the outputs before it: the shared test broker
        // can stall for many seconds under the parallel suites. So wait generously; a passing
        // run leaves this loop as soon as the guard has decided.
        let settled = ContinuousClock.now + .seconds(240)
        while ContinuousClock.now < settled {
            let promoted = live.engine.rollout.history.contains { $0.action == .promote }
            if autoPromote ? promoted : (live.engine.rollout.guardVerdicts["lr"]?.passed ?? 0) > 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .milliseconds(500))
        let history = live.engine.rollout.history
        let verdicts = live.engine.rollout.guardVerdicts
        let roles = Dictionary(uniqueKeysWithValues: live.engine.topology.models.map { ($0.name, $0.role) })
        guarding.cancel()
        try await live.stop()
        for e in history {
            print("[rollout] guard (auto_promote \(autoPromote)): \(e.action.rawValue) by \(e.by): \(e.reason)")
        }
        for (name, v) in verdicts.sorted(by: { $0.key < $1.key }) {
            print(
                "[rollout]   last verdict \(name): \(v.candidate ?? .nan) vs \(v.baseline ?? .nan) over \(v.labelled): \(v.passes)"
            )
        }

        // The weak canary: rolled back at its first judgement, on the first min_labels labels.
        let canary = try #require(history.first { $0.action == .canaryRollback })
        #expect(canary.by == "guard" && canary.deactivated.map { $0.prefix { $0 != "@" } } == ["weak"])
        #expect(canary.reason.contains("fails"))
        let judged = try #require(Int(canary.reason.split(separator: " over ").last?.split(separator: " ").first ?? ""))
        #expect(judged == minLabels, "judged on exactly the first min_labels labels")
        #expect(roles["weak"] == .shadow)

        // The regression beats the forest; it is promoted only with auto_promote.
        let promotions = history.filter { $0.action == .promote }
        if autoPromote {
            #expect(promotions.count == 1 && promotions.first?.by == "guard")
            #expect(promotions.first?.activated.first?.hasPrefix("lr@") == true)
            #expect(roles["lr"] == .active && roles["iforest"] == .shadow)
        } else {
            #expect(promotions.isEmpty)
            #expect(verdicts["lr"]?.passed ?? 0 > 0, "it passed, and would have been promoted")
            #expect(roles["lr"] == .shadow && roles["iforest"] == .active)
        }
        let audited = try setup.rolloutRecords()
        #expect(audited.count == history.count && audited.allSatisfy { $0["by"] as? String == "guard" })
    }

    @Test func anExperimentsAlertsNameTheirArmAndTheArmsAddUpToTheWhole() async throws {
        let models =
            RolloutSetup.forest("small", role: "active", trees: 20, seed: 3) + "\n"
            + RolloutSetup.forest("large", role: "active", trees: 80, seed: 4) + "\n"
            + RolloutSetup.regression(role: "shadow")
        let setup = try RolloutSetup(
            "ab", models: models,
            extra: """
                experiment:
                  name: forest-size
                  arms:
                    - { name: a, models: [small], share: 0.5 }
                    - { name: b, models: [large], share: 0.5 }
                """)
        var config = TransactionStream.Config()
        config.events = 30_000
        config.seed = 29
        config.cards = 3000
        config.labelDelayMs = 1000...20_000
        let stream = config
        let live = try LiveEngine(setup)
        let sent = try await offPool { try setup.produceStream(stream, rate: 20_000) }
        #expect(await live.waitFor(events: sent.events, labels: sent.labels))
        let figures = await live.engine.rollout.live()
        let status = StatusJSON.render(live.engine, models: figures.models, arms: figures.arms)
        let metrics = MetricsText.render(live.engine, models: figures.models, arms: figures.arms)
        try await live.stop()
        let summary = live.engine.summary()

        var alertsByArm: [String: Int] = [:]
        var scored = 0
        for c in live.chunks.withLock({ $0 }) {
            scored += (0..<c.count).filter { c.outcome($0) == .scored || c.outcome($0) == .alerted }.count
            for a in c.allAlerts {
                let o = try #require(try JSONSerialization.jsonObject(with: Data(a.json)) as? [String: Any])
                alertsByArm[o["arm"] as? String ?? "none", default: 0] += 1
            }
        }
        let arms = figures.arms
        for a in arms {
            print(
                "[rollout] arm \(a.arm): \(a.events) events, \(a.alerts) alerts, \(a.report.events) labelled, AUC \(a.report.rocAUC ?? .nan)"
            )
        }
        #expect(arms.map(\.arm) == ["a", "b"])
        #expect(Set(alertsByArm.keys) == ["a", "b"], "every alert names its arm: \(alertsByArm)")
        for a in arms { #expect(alertsByArm[a.arm] == a.alerts) }
        #expect(arms.map(\.events).reduce(0, +) == scored)
        #expect(arms.map(\.alerts).reduce(0, +) == summary.alerts)
        #expect(arms.map(\.report.events).reduce(0, +) == summary.quality.events)
        #expect(arms.map(\.report.positives).reduce(0, +) == summary.quality.positives)
        #expect(arms.allSatisfy { abs(Double($0.events) / Double(scored) - 0.5) < 0.1 }, "about half the events each")
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        let experiment = try #require(parsed["experiment"] as? [String: Any])
        #expect(experiment["name"] as? String == "forest-size")
        #expect((experiment["arms"] as? [[String: Any]])?.count == 2)
        #expect(metrics.contains(#"vigil_arm_alerts_total{arm="a",experiment="forest-size"}"#))
    }

    @Test func promotingAGroupSwitchesAWholeEnsembleBlueToGreenAndBack() async throws {
        let models =
            RolloutSetup.forest("blue_forest", role: "active") + "\n" + RolloutSetup.regression(role: "active") + "\n"
            + RolloutSetup.forest("green_forest", role: "shadow", trees: 30, seed: 9, extra: "    group: green") + "\n"
            + RolloutSetup.forest("green_small", role: "shadow", trees: 10, seed: 10, extra: "    group: green")
        let setup = try RolloutSetup("bluegreen", models: models)
        let data = EngineIntegrationTests.generated(6000, seed: 3)
        try setup.produce(data.events, keys: data.cards)
        let live = try LiveEngine(setup)
        #expect(await live.waitFor(events: data.events.count))
        func roles() -> [String] { live.engine.topology.models.map(\.role.rawValue) }
        #expect(roles() == ["active", "active", "shadow", "shadow"])
        let green = try await live.engine.rollout.promote("green", by: "tester", reason: "switch")
        #expect(roles() == ["shadow", "shadow", "active", "active"], "every active model is replaced")
        #expect(green.deactivated.count == 2 && green.activated.count == 2)
        await #expect(throws: EngineError.self) {
            try await live.engine.rollout.promote("green", by: "tester", reason: "again")
        }
        _ = try await live.engine.rollout.rollback("green", by: "tester", reason: "back to blue")
        #expect(roles() == ["active", "active", "shadow", "shadow"])
        try await live.stop()
    }
}
