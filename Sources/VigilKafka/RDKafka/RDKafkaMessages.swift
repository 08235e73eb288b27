import CRdKafka
import Foundation

/// Turns the messages of one `rd_kafka_consume_batch_queue` call into a `KafkaBatch`.
enum RDKafkaMessages {
    /// Copies a batch of librdkafka messages into one `KafkaBatch`: a first pass sizes the byte
    /// buffer, a second copies each payload once.
    static func batch(
        _ messages: UnsafeMutableBufferPointer<UnsafeMutablePointer<rd_kafka_message_t>?>, count n: Int,
        context: RDKafkaContext
    ) throws(KafkaError) -> KafkaBatch {
        var total = 0
        var fatal: KafkaError?
        for i in 0..<n {
            guard let m = messages[i] else { continue }
            if m.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR { continue }
            total += m.pointee.key_len + m.pointee.len
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        var entries: [KafkaBatch.Entry] = []
        entries.reserveCapacity(n)
        var headerEntries: [KafkaBatch.HeaderEntry] = []
        var topics: [String] = []
        var topicHandles: [OpaquePointer?] = []

        for i in 0..<n {
            guard let m = messages[i] else { continue }
            let msg = m.pointee
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                let reason = rd_kafka_message_errstr(m).map { String(cString: $0) } ?? ""
                let error = KafkaError.from(msg.err, reason, code: .consumeFailed)
                if msg.err == RD_KAFKA_RESP_ERR__FATAL { fatal = error } else { context.reportError(msg.err, reason) }
                continue
            }
            // Topics repeat within a batch: compare handles, build each name once.
            var topicIndex = topicHandles.firstIndex { $0 == msg.rkt } ?? -1
            if topicIndex < 0 {
                topicIndex = topics.count
                topicHandles.append(msg.rkt)
                topics.append(msg.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "")
            }
            let keyStart = bytes.count
            if let k = msg.key { bytes.append(contentsOf: UnsafeRawBufferPointer(start: k, count: msg.key_len)) }
            let valueStart = bytes.count
            if let v = msg.payload { bytes.append(contentsOf: UnsafeRawBufferPointer(start: v, count: msg.len)) }
            var tsType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
            let ts = rd_kafka_message_timestamp(m, &tsType)
            let headerStart = headerEntries.count
            var hdrs: OpaquePointer?
            if rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs {
                var idx = 0
                var name: UnsafePointer<CChar>?
                var value: UnsafeRawPointer?
                var size = 0
                while rd_kafka_header_get_all(hdrs, idx, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
                    let nameStart = bytes.count
                    let nameLength = name.map { strlen($0) } ?? 0
                    if let name { bytes.append(contentsOf: UnsafeRawBufferPointer(start: name, count: nameLength)) }
                    let vStart = bytes.count
                    if let value { bytes.append(contentsOf: UnsafeRawBufferPointer(start: value, count: size)) }
                    headerEntries.append(
                        .init(
                            nameStart: nameStart, nameCount: nameLength, valueStart: vStart,
                            valueCount: value == nil ? -1 : size))
                    idx += 1
                }
            }
            entries.append(
                .init(
                    topicIndex: Int32(topicIndex), partition: msg.partition, offset: msg.offset,
                    timestamp: tsType == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts,
                    keyStart: keyStart, keyCount: msg.key == nil ? -1 : msg.key_len,
                    valueStart: valueStart, valueCount: msg.payload == nil ? -1 : msg.len,
                    headerStart: Int32(headerStart), headerCount: Int32(headerEntries.count - headerStart)))
        }
        if let fatal { throw fatal }
        return KafkaBatch(topics: topics, entries: entries, headerEntries: headerEntries, bytes: bytes)
    }
}
