import Foundation
import Logging
import Testing
import VigilEngine
import VigilKafka
import VigilTestKit

/// The checkpoint topic's keys against the local broker: an instance's own records are its alone,
/// a source partition's records are anyone's, and a record of the old layout is read as one's own.
@Suite(
    .ownThread, .serialized, .timeLimit(.minutes(10)),
    .enabled(if: TestBroker.enabled, "needs a broker: run scripts/test.sh, which starts one and sets KAFKA_BOOTSTRAP"))
struct CheckpointScopeTests {
    @Test func twoInstancesNeverReadEachOthersCheckpoints() throws {
        let setup = try OperationsSetup("scopes")
        let spec = try #require(try setup.topology.checkpoints)
        let clients = try setup.clients
        func store(_ instance: String?) -> CheckpointStore {
            CheckpointStore(spec: spec, clients: clients, instance: instance, logger: .quiet)
        }
        let (a, b, legacy) = (store("a"), store("b"), store(nil))
        defer { for s in [a, b, legacy] { s.close() } }
        try a.publish(Array("a1".utf8), sequence: 1)
        try a.publish(Array("a2".utf8), sequence: 2)
        try b.publish(Array("b1".utf8), sequence: 1)
        try legacy.publish(Array("old".utf8), sequence: 7)
        let tp = TopicPartition(setup.source, 0)
        try a.publish(partition: Array("p0 by a".utf8), of: tp, sequence: 3)

        func texts(_ s: CheckpointStore) throws -> Set<String> {
            Set(try s.scan().stored.map { String(decoding: $0.bytes, as: UTF8.self) })
        }
        #expect(try texts(a) == ["a1", "a2", "old"])
        #expect(try texts(b) == ["b1", "old"])
        // A partition's windows are for whoever is given the partition next.
        let shared = try b.partitionRecords(for: [tp])[tp] ?? []
        #expect(shared.map { String(decoding: $0.bytes, as: UTF8.self) } == ["p0 by a"])
    }
}
