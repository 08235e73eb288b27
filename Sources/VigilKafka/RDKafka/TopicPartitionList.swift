import CRdKafka

/// Conversions between `rd_kafka_topic_partition_list_t` and Swift values. The list is owned
/// by the caller of each function.
enum TopicPartitionList {
    /// A new list; destroy it with `rd_kafka_topic_partition_list_destroy`.
    static func make(_ offsets: [TopicPartition: Int64]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(offsets.count))!
        for (tp, offset) in offsets.sorted(by: { $0.key < $1.key }) {
            rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition)?.pointee.offset = offset
        }
        return list
    }

    /// A new list without offsets.
    static func make(_ partitions: [TopicPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        for tp in partitions { rd_kafka_topic_partition_list_add(list, tp.topic, tp.partition) }
        return list
    }

    static func partitions(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition] {
        elements(list).map { TopicPartition(String(cString: $0.topic), $0.partition) }
    }

    static func offsets(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [TopicPartition: Int64] {
        var out: [TopicPartition: Int64] = [:]
        for e in elements(list) { out[TopicPartition(String(cString: e.topic), e.partition)] = e.offset }
        return out
    }

    static func elements(_ list: UnsafePointer<rd_kafka_topic_partition_list_t>?) -> [rd_kafka_topic_partition_t] {
        guard let list, list.pointee.cnt > 0 else { return [] }
        return (0..<Int(list.pointee.cnt)).map { list.pointee.elems[$0] }
    }
}
