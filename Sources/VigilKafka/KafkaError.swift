/// The error type of VigilKafka: every librdkafka failure becomes one of these, with a code the
/// caller can match, whether retrying can help, and where it was raised.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of static constants.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A librdkafka property was unknown or had an invalid value.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// The linked librdkafka is older than Vigil supports.
        public static let unsupportedLibrary = Code("unsupportedLibrary")
        /// A client handle could not be created.
        public static let clientCreation = Code("clientCreation")
        /// No broker could be reached (connection refused, all brokers down, timeout).
        public static let brokerUnavailable = Code("brokerUnavailable")
        /// The producer's local queue is full; poll and retry.
        public static let queueFull = Code("queueFull")
        /// A message could not be produced or was not acknowledged.
        public static let deliveryFailed = Code("deliveryFailed")
        /// Consuming failed.
        public static let consumeFailed = Code("consumeFailed")
        /// A topic or metadata request failed.
        public static let adminFailed = Code("adminFailed")
        /// The request did not complete in time.
        public static let timedOut = Code("timedOut")
        /// librdkafka reported a fatal error: the client must be recreated.
        public static let fatal = Code("fatal")
    }

    public let code: Code
    public let reason: String
    /// librdkafka's own error code (`rd_kafka_resp_err_t`), when there is one.
    public let rdkafkaCode: Int32?
    public let isRetriable: Bool
    public let isFatal: Bool
    public let file: String
    public let line: Int

    public init(
        _ code: Code, _ reason: String, rdkafkaCode: Int32? = nil, isRetriable: Bool = false, isFatal: Bool = false,
        file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.reason = reason
        self.rdkafkaCode = rdkafkaCode
        self.isRetriable = isRetriable
        self.isFatal = isFatal || code == .fatal
        self.file = file
        self.line = line
    }

    public var description: String { "\(code): \(reason)" }
}
