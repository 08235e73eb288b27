import HummingbirdCore

/// How the admin endpoints read a request (its bearer token and query parameters), apart from
/// the server, so that the reading is fuzzed (`Tests/Fuzz`) and tested without a socket.
public enum AdminRequest {
    /// Why a mutating request is refused.
    public enum Refusal: Equatable, Sendable {
        /// No token is configured: every mutating request is refused (403).
        case noToken
        /// The `Authorization` header is missing or is not `Bearer <token>` (401).
        case wrongToken
    }

    /// Checks `Authorization: Bearer <token>`; nil when the request may go on. The comparison
    /// has no early exit, so the time taken says nothing about the token.
    public static func authorize(_ header: String?, token: String?) -> Refusal? {
        guard let token else { return .noToken }
        let given = Array((header ?? "").utf8)
        let expected = Array(("Bearer " + token).utf8)
        var diff = given.count ^ expected.count
        for i in 0..<max(given.count, expected.count) {
            diff |= Int((i < given.count ? given[i] : 0) ^ (i < expected.count ? expected[i] : 0))
        }
        return diff == 0 ? nil : .wrongToken
    }

    /// Who asks and why (`by` and `reason` query parameters; the CLI fills them in).
    public static func actor(_ uri: URI) -> (by: String, reason: String) {
        let q = uri.queryParameters
        return (q.get("by") ?? "admin", q.get("reason") ?? "")
    }

    /// The model a promotion or rollback names (`name`); nil when absent or empty.
    public static func modelName(_ uri: URI) -> String? {
        uri.queryParameters.get("name").flatMap { $0.isEmpty ? nil : $0 }
    }
}
