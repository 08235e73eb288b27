/// Why an event could not be processed: a stable code for metrics, routing and the dead-letter
/// record, and a sentence naming the field and the problem for the person who reads it.
public struct DeadLetterReason: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var detail: String

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }

    /// The reasons, as stable snake_case codes (the `vigil.reason` header and the
    /// `dead_letters{reason}` metric). A struct rather than an enum so codes can be added.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// Not valid JSON, or not UTF-8 where text is required.
        public static let malformedJSON = Code(rawValue: "malformed_json")
        /// Valid JSON, but not an object.
        public static let notAnObject = Code(rawValue: "not_an_object")
        /// A declared field holds a value of another type.
        public static let wrongType = Code(rawValue: "wrong_type")
        /// A required field is absent or null.
        public static let missingField = Code(rawValue: "missing_field")
        /// A number outside the field's declared `min` / `max`.
        public static let outOfRange = Code(rawValue: "out_of_range")
        /// The entity key field is absent or null.
        public static let missingKey = Code(rawValue: "missing_key")
        /// No event time, and the topology says `missing: dead_letter`.
        public static let missingTime = Code(rawValue: "missing_time")
        /// An event time that cannot be read in the declared format.
        public static let badTime = Code(rawValue: "bad_time")
        /// An event time further ahead of its record's broker timestamp than `source.time.max_future`,
        /// with `future: dead_letter`.
        public static let futureTime = Code(rawValue: "future_time")
        /// Larger than `source.max_event_bytes`.
        public static let oversized = Code(rawValue: "oversized")
        /// A record without a value (a tombstone) or with an empty one.
        public static let emptyEvent = Code(rawValue: "empty_event")
        /// Later than the allowed lateness, with `late: dead_letter`.
        public static let late = Code(rawValue: "late")

        /// Every code, for metrics and documentation.
        public static let all: [Code] = [
            .malformedJSON, .notAnObject, .wrongType, .missingField, .outOfRange, .missingKey, .missingTime, .badTime,
            .futureTime, .oversized, .emptyEvent, .late,
        ]
    }
}
