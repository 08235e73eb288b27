import VigilKafka

extension Topology {
    /// Creates every topic this topology names that is missing: the checkpoint topic with one
    /// partition and compaction, the others with `source.kafka.partitions`.
    /// - Returns: the topics created.
    public func createMissingTopics(_ admin: KafkaAdmin) throws(KafkaError) -> [String] {
        var created: [String] = []
        for topic in topics {
            if topic == checkpoints?.topic {
                if try admin.createTopic(topic, partitions: 1, config: ["cleanup.policy": "compact"]) {
                    created.append(topic)
                }
            } else if try admin.createTopic(topic, partitions: source.kafka.partitions) {
                created.append(topic)
            }
        }
        return created
    }
}
