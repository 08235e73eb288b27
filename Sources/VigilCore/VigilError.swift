/// The error type of VigilCore: one struct with extensible codes, so callers can match on `code`
/// and new cases never break them.
public struct VigilError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, as an extensible set of static constants.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// A configuration document could not be read or failed validation.
        public static let invalidConfiguration = Code("invalidConfiguration")
        /// Compressed bytes could not be decompressed (corrupt, truncated or too large).
        public static let corruptCompressedData = Code("corruptCompressedData")
        /// Input bytes could not be decoded.
        public static let malformedInput = Code("malformedInput")
        /// A file could not be read or written.
        public static let ioFailed = Code("ioFailed")
        /// A command's arguments do not fit together or with the topology.
        public static let invalidArgument = Code("invalidArgument")
    }

    public let code: Code
    public let reason: String
    public let file: String
    public let line: Int

    public init(_ code: Code, _ reason: String, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// Retrying the same operation with the same input cannot succeed for any VigilCore error.
    public var isRetriable: Bool { false }

    public var description: String { "\(code): \(reason)" }
}
