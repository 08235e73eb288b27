import Testing
import VigilKafka
import VigilTestKit

@Suite(.ownThread) struct KafkaStatisticsTests {
    /// Trimmed from a real librdkafka 2.8 consumer's statistics JSON.
    static let sample = #"""
        {"name":"vigil#consumer-1","client_id":"vigil","type":"consumer","ts":1,"time":1,"msg_cnt":3,
         "txmsgs":0,"rxmsgs":12000,
         "brokers":{"127.0.0.1:9092/111":{"name":"127.0.0.1:9092/111","state":"UP"}},
         "topics":{"payments":{"topic":"payments","partitions":{
           "0":{"partition":0,"consumer_lag":42,"committed_offset":100,"hi_offset":142,"fetchq_cnt":5},
           "1":{"partition":1,"consumer_lag":-1,"committed_offset":-1001,"hi_offset":-1,"fetchq_cnt":0},
           "-1":{"partition":-1,"consumer_lag":-1,"committed_offset":-1001,"hi_offset":-1,"fetchq_cnt":0}}}}}
        """#

    @Test func parsesWhatVigilReports() throws {
        let stats = try #require(KafkaStatistics(json: Array(Self.sample.utf8)))
        #expect(stats.name == "vigil#consumer-1" && stats.type == "consumer")
        #expect(stats.queuedMessages == 3 && stats.receivedMessages == 12000)
        #expect(stats.brokerStates == ["127.0.0.1:9092/111": "UP"])
        #expect(stats.partitions.count == 2, "the internal partition -1 is left out")
        #expect(stats.partitions[TopicPartition("payments", 0)]?.consumerLag == 42)
        #expect(stats.partitions[TopicPartition("payments", 0)]?.highWatermark == 142)
        #expect(stats.partitions[TopicPartition("payments", 1)]?.consumerLag == -1)
    }

    @Test func rejectsWhatIsNotStatistics() {
        #expect(KafkaStatistics(json: Array("not json".utf8)) == nil)
        #expect(KafkaStatistics(json: Array("{}".utf8)) == nil)
    }
}
