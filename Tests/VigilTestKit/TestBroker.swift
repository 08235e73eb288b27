import Foundation

/// The real broker integration tests talk to. scripts/test.sh starts one and sets
/// KAFKA_BOOTSTRAP; run by hand without it the suites are skipped, but under CI=true a missing
/// broker fails them instead.
public enum TestBroker {
    public static var bootstrap: String? {
        ProcessInfo.processInfo.environment["KAFKA_BOOTSTRAP"].flatMap { $0.isEmpty ? nil : $0 }
    }

    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// For `.enabled(if:)`: always true under CI, so a missing broker fails rather than skips.
    public static var enabled: Bool { bootstrap != nil || isCI }

    /// The bootstrap address.
    /// - Throws: under CI without a broker, saying so.
    public static func address() throws -> String {
        guard let bootstrap else { throw Missing() }
        return bootstrap
    }

    struct Missing: Error, CustomStringConvertible {
        var description: String { "CI=true but KAFKA_BOOTSTRAP is not set: the test broker did not start" }
    }

    /// A name no other test or run uses, for topics and groups.
    public static func unique(_ prefix: String) -> String {
        "\(prefix)-\(getpid())-\(UInt64(Date().timeIntervalSince1970 * 1_000_000) % 1_000_000_000)"
    }
}
