/// The error type of VigilEngine's runtime: a code callers can match, a message for people, and
/// the error that caused it. It travels between the ingest thread and the control plane (reload,
/// admin, checkpoints) in place of strings.
public struct EngineError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of static constants.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The engine is stopping (or stopped): the request was not served.
        public static let stopping = Code("stopping")
        /// The topology has no `checkpoints:` section.
        public static let checkpointsDisabled = Code("checkpointsDisabled")
        /// A checkpoint is already being taken.
        public static let checkpointInProgress = Code("checkpointInProgress")
        /// The checkpoint asked for (`--restore`) is not kept, or does not load.
        public static let restoreFailed = Code("restoreFailed")
        /// A new pipeline could not be built or started from the topology.
        public static let pipelineFailed = Code("pipelineFailed")
        /// Topics could not be created or the broker did not answer.
        public static let kafkaFailed = Code("kafkaFailed")
        /// `models promote` or `rollback` named no model it can act on.
        public static let unknownModel = Code("unknownModel")
        /// A promotion or rollback that does not apply to the models' roles now.
        public static let rolloutRefused = Code("rolloutRefused")
    }

    public let code: Code
    public let message: String
    /// The error behind this one, if any (a `KafkaError`, a `CheckpointError`, a `ConfigError`…).
    public let cause: (any Error & Sendable)?
    public let file: String
    public let line: Int

    public init(
        _ code: Code, _ message: String, cause: (any Error & Sendable)? = nil, file: String = #fileID, line: Int = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.file = file
        self.line = line
    }

    public var description: String {
        guard let cause else { return message }
        return "\(message): \(cause)"
    }
}
