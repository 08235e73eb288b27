/// Kafka's naming rules, checked at validation time so a bad topic name fails before any broker
/// is contacted.
public enum KafkaNames {
    /// Whether `name` is a legal Kafka topic name: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
    public static func isValidTopic(_ name: String) -> Bool {
        guard (1...249).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F
                || c == 0x2D
        }
    }

    /// Reports an illegal topic name read from `key` of `object`.
    public static func checkTopic(_ name: String, key: String, in object: ConfigObject) {
        if !isValidTopic(name) {
            object.report(key, "'\(name)' is not a legal Kafka topic name: use 1 to 249 of A-Z a-z 0-9 . _ -")
        }
    }
}
