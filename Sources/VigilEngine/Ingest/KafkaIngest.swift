import VigilKafka

/// One polled batch, sorted by what it carries: source events (by index, decoded later by the
/// pipeline), decoded labels, and label records that could not be read.
struct KafkaIngest {
    var events: [Int] = []
    var labels: [LabelRecord] = []
    /// Label records (by index) that go to the dead letters, with the reason.
    var badLabels: [(index: Int, reason: DeadLetterReason)] = []
    /// Label records read (their offsets may be committed at once).
    var labelPositions: [KafkaPosition] = []
    /// When each label became known (its event-time field), if it says.
    var labelTimes: [Int64?] = []
    /// The offset after the last record of each partition in the batch.
    var nextOffsets: [(TopicPartition, Int64)] {
        lastOffsets.map { (TopicPartition(topics[$0.topic], $0.partition), $0.offset + 1) }
    }

    private let topics: [String]
    /// Per (topic index, partition) of the batch: its last offset. A batch holds a few
    /// partitions, so a linear search beats hashing a topic name per record.
    private var lastOffsets: [(topic: Int, partition: Int32, offset: Int64)] = []

    /// Splits `batch`; records of topics that are neither source nor labels are skipped.
    init(_ batch: KafkaBatch, sourceTopics: Set<String>, labelDecoders: [String: LabelDecoder]) {
        topics = batch.topics
        // What each of the batch's topics is, decided once per batch rather than per record.
        let isSource = topics.map { sourceTopics.contains($0) }
        let decoders = topics.map { labelDecoders[$0] }
        events.reserveCapacity(batch.count)
        for i in 0..<batch.count {
            let record = batch[i]
            if let k = lastOffsets.firstIndex(where: {
                $0.topic == record.topicIndex && $0.partition == record.partition
            }) {
                lastOffsets[k].offset = record.offset
            } else {
                lastOffsets.append((record.topicIndex, record.partition, record.offset))
            }
            if isSource[record.topicIndex] {
                events.append(i)
            } else if let decoder = decoders[record.topicIndex] {
                switch record.withValueBytes({ decoder.decode($0) }) {
                case .success(let label):
                    labels.append(label.record)
                    labelPositions.append(record.position)
                    labelTimes.append(label.time)
                case .failure(let reason):
                    badLabels.append((i, reason))
                }
            }
        }
    }
}

/// The source records of a consumed batch, as a chunk's raw records.
struct KafkaRecords: RawRecords {
    let batch: KafkaBatch
    let indices: [Int]

    func withValue<R>(_ i: Int, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        batch[indices[i]].withValueBytes { body($0) }
    }

    func key(_ i: Int) -> [UInt8]? { batch[indices[i]].key.map(Array.init) }
}
