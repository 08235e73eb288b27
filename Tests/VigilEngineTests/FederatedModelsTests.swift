import Foundation
import Testing
import VigilCore
import VigilFeatures
import VigilTestKit

@testable import VigilEngine
@testable import VigilModels

/// The federation's pieces without a broker: the models record, FedAvg over replicas, and the
/// `federation:` section.
@Suite(.ownThread) struct FederatedModelsTests {
    static let features = ["amount", "since_last"]

    static func forest(seed: UInt64, learning rows: Range<Int>) -> IsolationForest {
        var forest = IsolationForest(
            features: features, spec: IsolationForestSpec(trees: 10, sample: 32, windowEvents: 320), seed: seed)
        var m = FeatureMatrix(names: features)
        m.reset(rows: 1)
        for r in rows {
            m.values = [Double(r % 97), Double(r % 13)]
            forest.learn(m, row: 0, label: nil)
        }
        return forest
    }

    @Test func aModelsRecordRoundTripsAndRefusesDamage() throws {
        var body = BinaryWriter()
        ModelSet.Decoded.forest(Self.forest(seed: 1, learning: 0..<100)).encode(into: &body)
        let record = FederatedModels(
            topology: "t", instance: "a", publishedMs: 1_767_225_600_000,
            entries: [
                .init(version: "iforest@1", weight: 100, body: body.bytes), .init(version: "lr@2", weight: 0, body: []),
            ])
        let bytes = record.encoded()
        let read = try FederatedModels(decoding: bytes)
        #expect(read.key == "t/a" && read.publishedMs == record.publishedMs)
        #expect(read.entries.map(\.version) == ["iforest@1", "lr@2"] && read.entries.map(\.weight) == [100, 0])
        #expect(read.entries[0].body == body.bytes)
        #expect(throws: VigilError.self) { try FederatedModels(decoding: Array(bytes.dropLast(3))) }
        #expect(throws: VigilError.self) { try FederatedModels(decoding: Array("not lz4".utf8)) }
        // A body decodes as a replica of a model of its own kind and shape only.
        let mine = ModelSet.Decoded.forest(Self.forest(seed: 2, learning: 0..<50))
        #expect(try mine.decodeReplica(body.bytes).isReplica(of: mine))
        let other = ModelSet.Decoded.forest(
            IsolationForest(features: ["x"], spec: IsolationForestSpec(trees: 10, sample: 32), seed: 1))
        #expect(try !mine.decodeReplica(body.bytes).isReplica(of: other))
    }

    @Test func slotsAreSharedInProportionToTheWeights() {
        #expect(ModelSet.apportion(100, [1, 1, 1]) == [34, 33, 33])
        #expect(ModelSet.apportion(10, [3, 1]) == [8, 2])
        #expect(ModelSet.apportion(10, [0, 5]) == [0, 10])
        #expect(ModelSet.apportion(10, [0, 0]) == [0, 0])
        #expect(ModelSet.apportion(7, [1, 2, 4]).reduce(0, +) == 7)
    }

    /// FedAvg of forests: each replica's trees fill its share of the slots; replicas without a
    /// weight (cold) give none, and with no weight at all there is no average.
    @Test func theAverageOfForestsTakesEachReplicasShareOfTrees() throws {
        let a = Self.forest(seed: 1, learning: 0..<200)
        let b = Self.forest(seed: 2, learning: 200..<400)
        let cold = Self.forest(seed: 3, learning: 0..<0)
        let average = try #require(
            ModelSet.average([(.forest(a), 300), (.forest(cold), 0), (.forest(b), 100)]))
        guard case .forest(let f) = average else {
            Issue.record("not a forest")
            return
        }
        #expect((0..<8).allSatisfy { f.forest[$0] == a.forest[$0] })
        #expect((8..<10).allSatisfy { f.forest[$0] == b.forest[$0] })
        #expect(ModelSet.average([(.forest(a), 0), (.forest(b), 0)]) == nil)
    }

    /// The shipped topology's models, as one worker holds them.
    static func cardPaymentsModels() throws -> ModelSet {
        let t = try TopologyLoader.load(
            path: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path)
        let plan = try FeaturePlan(features: t.features, layout: EventLayout(schema: t.schema), state: t.state)
        return ModelSet(specs: t.models, plan: plan)
    }

    /// A regression that adopts an average holding its peers' labels counts them towards joining
    /// the ensemble; its own counts, its FedAvg weight, stay its own.
    @Test func peersLabelsInAnAdoptedAverageCountTowardsReadiness() throws {
        var models = try Self.cardPaymentsModels()
        let m = try #require(models.versions.firstIndex { $0.hasPrefix("fraud_lr@") })
        guard case .regression(let own) = models.model(m) else { throw SetupFailure(description: "not a regression") }
        var peer = own
        var row = FeatureMatrix(
            names: own.featureNames, categoryNames: own.categoryNames, categoryBuckets: own.categoryBuckets)
        row.reset(rows: 1)
        for i in 0..<ModelSet.minimumLabels { peer.learn(row, row: 0, label: i < ModelSet.minimumPositives) }
        #expect(!models.isReady(m))
        var average = own
        average.merge(peer, weight: 1)
        models.adopt(m, .regression(average), since: .regression(own))
        #expect(models.isReady(m), "the group has seen enough labels")
        #expect(models.examples(m) == 0, "its own weight is still the labels it learned itself")
    }

    /// Every forest takes the instance's share of the stream, and keeps it when replaced.
    @Test func forestsTakeTheStreamShareAndKeepItWhenReplaced() throws {
        var models = try Self.cardPaymentsModels()
        let m = try #require(models.versions.firstIndex { $0.hasPrefix("iforest@") })
        models.setStreamShare(1.0 / 3)
        guard case .forest(let forest) = models.model(m) else { throw SetupFailure(description: "not a forest") }
        #expect(forest.streamShare == 1.0 / 3 && forest.activeWindow == forest.windowEvents / 3)
        var fresh = forest
        fresh.streamShare = 1
        models.replace(m, with: .forest(fresh))
        guard case .forest(let replaced) = models.model(m) else { throw SetupFailure(description: "not a forest") }
        #expect(replaced.streamShare == 1.0 / 3)
    }

    @Test func theSectionDecodesWithItsDefaults() throws {
        let cardPayments = try String(
            contentsOf: CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml"), encoding: .utf8)
        let t = try TopologyLoader.parse(cardPayments + "\nfederation: { topic: vigil-models, every: 10s }\n")
        #expect(t.federation == FederationSpec(topic: "vigil-models", every: .seconds(10), maxAge: .seconds(100)))
        #expect(t.topics.last == "vigil-models")
        let later = try TopologyLoader.parse(cardPayments + "\nfederation: { topic: vigil-models, every: 20s }\n")
        let change = TopologyChange.between(t, later)
        #expect(change.kind == .tunable, "a live change: the service reads it each round")
    }
}
