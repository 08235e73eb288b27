import CRdKafka

/// The version of the librdkafka linked into this binary, as librdkafka reports it at run time.
enum RDKafkaVersion {
    /// `0xMMmmrrpp`.
    static var number: Int32 { rd_kafka_version() }
    /// For example `2.8.0`.
    static var text: String { String(cString: rd_kafka_version_str()) }
}
