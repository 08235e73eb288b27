/// Facts about the librdkafka linked into this binary, and the check that it is new enough.
public enum KafkaRuntime {
    /// Oldest librdkafka Vigil supports: 2.0.2 (Debian 12) cannot parse the ApiVersionResponse
    /// of current brokers, 2.8.0 works.
    public static let minimumVersion: Int32 = 0x0208_0000
    public static let minimumVersionString = "2.8.0"

    /// The runtime version as librdkafka encodes it (`0xMMmmrrpp`).
    public static var version: Int32 { RDKafkaVersion.number }

    /// The runtime version, e.g. `2.8.0`.
    public static var versionString: String { RDKafkaVersion.text }

    /// - Throws: `.unsupportedLibrary` naming both versions and the fix.
    public static func checkVersion() throws(KafkaError) {
        guard version >= minimumVersion else {
            throw KafkaError(
                .unsupportedLibrary,
                "librdkafka \(versionString) is loaded, but Vigil needs \(minimumVersionString) or newer. "
                    + "Build with scripts/setup.sh (it builds 2.8.0 into .deps/), or with VIGIL_RDKAFKA=system "
                    + "install a newer librdkafka; check which library the loader picks with `ldd $(which vigil)`.",
                isFatal: true)
        }
    }
}
