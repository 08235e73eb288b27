import VigilCore
import VigilKafka
import VigilModels

/// Vigil's version and the runtime versions of the native libraries it is linked with, which is
/// what a bug report needs first.
public enum VersionInfo {
    public static let vigil = "0.1.0"

    /// One line per component.
    public static var text: String {
        var lines = [
            "vigil \(vigil)",
            "librdkafka \(KafkaRuntime.versionString) (minimum \(KafkaRuntime.minimumVersionString))",
            "liblz4 \(LZ4.versionString)",
            "\(LinearKernels.openBLASConfig) (core \(LinearKernels.openBLASCore))",
        ]
        if KafkaRuntime.version < KafkaRuntime.minimumVersion {
            lines.append("warning: this librdkafka is too old for Vigil; see scripts/setup.sh")
        }
        return lines.joined(separator: "\n")
    }
}
