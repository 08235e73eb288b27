import Hummingbird

/// Refuses a request whose body is over `limit` bytes (413) before any route runs, whether it
/// says its length or streams it in chunks: no admin endpoint takes a body, so a large one is
/// only ever an attack on the endpoint's memory or time.
struct BodyLimit<Context: RequestContext>: RouterMiddleware {
    /// What the admin endpoint accepts: more than any query it takes.
    static var admin: Int { 64 * 1024 }

    let limit: Int

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
            return tooLarge
        }
        var request = request
        do {
            _ = try await request.collectBody(upTo: limit)
        } catch {
            return tooLarge
        }
        return try await next(request, context)
    }

    private var tooLarge: Response {
        AdminServer.text("request bodies are limited to \(limit) bytes\n", status: .contentTooLarge)
    }
}
