import Foundation
import Testing
import VigilCore
import VigilEngine
import VigilFeatures
import VigilModels
import VigilTestKit

@Suite(.ownThread) struct TopologyTests {
    static let shipped: [String] = {
        let dir = CLI.repositoryRoot.appendingPathComponent("topologies")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted().map { dir.appendingPathComponent($0).path }
    }()

    static let fixtures: URL = Bundle.module.resourceURL!.appendingPathComponent("Fixtures/invalid")

    static let invalid: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: fixtures.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    @Test func atLeastTwoTopologiesShip() {
        #expect(Self.shipped.count >= 2)
        #expect(Self.invalid.count >= 4)
    }

    @Test(arguments: shipped)
    func everyShippedTopologyValidates(path: String) throws {
        let topology = try TopologyLoader.load(path: path)
        #expect(!topology.features.isEmpty)
        #expect(topology.models.contains { $0.role == .active })
        // Its features compile for the hot path, one column per feature.
        let plan = try FeaturePlan(
            features: topology.features, layout: EventLayout(schema: topology.schema), state: topology.state)
        #expect(plan.names.count + plan.categoryNames.count == topology.features.count)
    }

    @Test func cardPaymentsDecodesAsWritten() throws {
        let t = try TopologyLoader.load(
            path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path)
        #expect(t.name == "card-payments")
        #expect(t.source.kafka.topics == ["payments"] && t.source.kafka.group == "vigil-card-payments")
        #expect(t.source.kafka.properties.isEmpty)
        #expect(t.source.kafka.consumerProperties == ["fetch.wait.max.ms": "10"])
        #expect(t.source.kafka.createTopics && t.source.kafka.partitions == 4)
        #expect(
            t.topics == [
                "payments", "payments-labels", "payments-alerts", "payments-dlq", "vigil-card-payments-checkpoints",
                "vigil-card-payments-audit",
            ])
        #expect(t.source.key == "card_id" && t.source.id == "txn_id")
        #expect(t.source.time?.format == .unixMilliseconds && t.source.time?.missing == .deadLetter)
        #expect(t.schema["amount"] == FieldSpec(name: "amount", type: .number, required: true, min: 0))
        #expect(t.schema["channel"]?.required == false)
        #expect(t.features.map(\.name).contains("amount_vs_day"))
        #expect(t.features[1].kind == .window(key: "card_id", length: .seconds(600), aggregate: .count, of: nil))
        #expect(t.models.map(\.kind.tag) == [.isolationForest, .logisticRegression])
        #expect(t.models[1].kind.labels?.topic == "payments-labels")
        #expect(t.threshold.targetAlertRate == 0.005 && t.threshold.suppress == .seconds(600))
        #expect(t.alerts == AlertsSpec(topic: "payments-alerts", explain: 3))
        #expect(t.checkpoints?.every == .seconds(30))
        #expect(t.admin == AdminSpec(host: "127.0.0.1", port: 9464))
    }

    /// `ensemble.weights`: learned unless the file fixes them; anything else is refused with the
    /// choices named.
    @Test func ensembleWeightsAreLearnedUnlessFixed() throws {
        let text = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        #expect(try TopologyLoader.parse(text).ensemble.weights == .learned)
        let fixed = try TopologyLoader.parse(text + "\nensemble: { weights: fixed }\n")
        #expect(fixed.ensemble.weights == .fixed)
        do {
            _ = try TopologyLoader.parse(text + "\nensemble: { weights: fixd }\n")
            Issue.record("an unknown choice was accepted")
        } catch {
            #expect(error.description.contains("unknown ensemble weights 'fixd'"), "\(error.description)")
        }
    }

    /// Each broken fixture produces exactly the messages in its `.expected` file.
    @Test(arguments: invalid)
    func brokenTopologiesListEveryProblem(name: String) throws {
        let text = try String(contentsOf: Self.fixtures.appendingPathComponent(name), encoding: .utf8)
        let expected = try String(
            contentsOf: Self.fixtures.appendingPathComponent(name.replacingOccurrences(of: ".yaml", with: ".expected")),
            encoding: .utf8)
        #expect(throws: TopologyLoader.ValidationError.self) { try TopologyLoader.parse(text, file: name) }
        do {
            _ = try TopologyLoader.parse(text, file: name)
        } catch {
            #expect(error.description + "\n" == expected)
        }
    }

    @Test func anUnreadableOrEmptyFileIsReported() {
        #expect {
            try TopologyLoader.load(path: "/nonexistent/x.yaml")
        } throws: {
            ($0 as? TopologyLoader.ValidationError)?.description.hasPrefix(
                "/nonexistent/x.yaml: (top level): cannot read the file") == true
        }
        #expect {
            try TopologyLoader.parse("# nothing\n", file: "e.yaml")
        } throws: { ($0 as? TopologyLoader.ValidationError)?.description == "e.yaml: (top level): the file is empty" }
        #expect {
            try TopologyLoader.parse("- a\n- b\n", file: "l.yaml")
        } throws: {
            ($0 as? TopologyLoader.ValidationError)?.description
                == "l.yaml:1:1: (top level): must be a mapping, got a list"
        }
    }
}
