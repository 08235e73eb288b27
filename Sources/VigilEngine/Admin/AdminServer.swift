import Foundation
import Hummingbird
import Logging
import VigilKafka

/// The admin HTTP endpoint (Hummingbird, loopback unless the topology says otherwise): `/` (the
/// live status page), `/metrics` (Prometheus text), `/healthz`, `/readyz`, `/status` (JSON), and the mutating
/// `POST /reload` and `POST /checkpoint`, which need `Authorization: Bearer <token>`.
public enum AdminServer {
    /// The bearer token of the mutating endpoints: the environment variable `spec.tokenEnv`, or
    /// the first line of `spec.tokenFile`; nil when neither is set (they are then refused).
    public static func token(_ spec: AdminSpec, environment: [String: String] = ProcessInfo.processInfo.environment)
        -> String?
    {
        if let v = environment[spec.tokenEnv]?.trimmingCharacters(in: .whitespacesAndNewlines), !v.isEmpty { return v }
        if let file = spec.tokenFile, let text = try? String(contentsOfFile: file, encoding: .utf8) {
            let line = text.split(separator: "\n").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            if !line.isEmpty { return line }
        }
        return nil
    }

    /// The server as a service to run in a `ServiceGroup` (it stops on graceful shutdown).
    public static func application(engine: KafkaEngine, spec: AdminSpec, token: String?, logger: Logger)
        -> some ApplicationProtocol
    {
        let router = Router()
        router.add(middleware: BodyLimit(limit: BodyLimit<BasicRequestContext>.admin))
        router.get("/") { _, _ -> Response in
            text(StatusPage.html, contentType: "text/html; charset=utf-8")
        }
        router.get("/metrics") { _, _ -> Response in
            let live = await engine.rollout.live()
            // The engine's registry, then the process's swift-metrics registry (the Kafka clients').
            return text(
                MetricsText.render(engine, models: live.models, arms: live.arms, segments: live.segments),
                contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/healthz") { _, _ -> Response in
            text("ok\n")
        }
        router.get("/readyz") { _, _ -> Response in
            guard let why = engine.notReadyReason else { return text("ready\n") }
            return text("not ready: \(why)\n", status: .serviceUnavailable)
        }
        router.get("/status") { _, _ -> Response in
            let live = await engine.rollout.live()
            return text(
                StatusJSON.render(engine, models: live.models, arms: live.arms, segments: live.segments),
                contentType: "application/json")
        }
        router.get("/models") { _, _ -> Response in
            let models = await engine.rollout.quality()
            return text(
                ModelsJSON.render(models, history: engine.rollout.history, verdicts: engine.rollout.guardVerdicts),
                contentType: "application/json")
        }
        router.get("/models/history") { _, _ -> Response in
            text(ModelsJSON.text(ModelsJSON.history(engine.rollout.history)), contentType: "application/json")
        }
        router.post("/models/promote") { request, _ -> Response in
            if let refusal = authorize(request, token: token) { return refusal }
            guard let name = AdminRequest.modelName(request.uri) else {
                return text("{\"error\":\"name is required\"}\n", status: .badRequest, contentType: "application/json")
            }
            let (by, reason) = AdminRequest.actor(request.uri)
            return await rolloutReply { () async throws(EngineError) in
                try await engine.rollout.promote(name, by: by, reason: reason)
            }
        }
        router.post("/models/rollback") { request, _ -> Response in
            if let refusal = authorize(request, token: token) { return refusal }
            let name = AdminRequest.modelName(request.uri)
            let (by, reason) = AdminRequest.actor(request.uri)
            return await rolloutReply { () async throws(EngineError) in
                try await engine.rollout.rollback(name, by: by, reason: reason)
            }
        }
        router.post("/reload") { request, _ -> Response in
            if let refusal = authorize(request, token: token) { return refusal }
            let outcome = await engine.reload(source: .admin)
            let status: HTTPResponse.Status =
                switch outcome.result {
                case .applied, .unchanged: .ok
                case .refused: .conflict
                case .invalid: .unprocessableContent
                }
            return text(outcome.json + "\n", status: status, contentType: "application/json")
        }
        router.post("/checkpoint") { request, _ -> Response in
            if let refusal = authorize(request, token: token) { return refusal }
            do throws(EngineError) {
                try await engine.requestCheckpoint()
            } catch {
                return text(
                    "{\"error\":\(jsonString(error.description))}\n", status: .conflict, contentType: "application/json"
                )
            }
            return text("{\"checkpoint\":\"started\"}\n", status: .accepted, contentType: "application/json")
        }
        return Application(
            router: router, configuration: .init(address: .hostname(spec.host, port: spec.port), serverName: "vigil"),
            logger: logger)
    }

    private static func rolloutReply(_ body: () async throws(EngineError) -> RolloutEvent) async -> Response {
        do throws(EngineError) {
            let event = try await body()
            return text(
                ModelsJSON.text(ModelsJSON.history([event]).first ?? [:]), contentType: "application/json")
        } catch {
            let status: HTTPResponse.Status =
                switch error.code {
                case .unknownModel: .notFound
                case .stopping: .serviceUnavailable
                default: .conflict
                }
            return text(
                "{\"error\":\(jsonString(error.description))}\n", status: status, contentType: "application/json")
        }
    }

    private static func authorize(_ request: Request, token: String?) -> Response? {
        switch AdminRequest.authorize(request.headers[.authorization], token: token) {
        case nil:
            return nil
        case .noToken:
            return text(
                "no admin token is configured (set the token variable or admin.token_file)\n", status: .forbidden)
        case .wrongToken:
            var headers = HTTPFields()
            headers[.wwwAuthenticate] = "Bearer"
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(
                status: .unauthorized, headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: "a valid bearer token is required\n")))
        }
    }

    static func text(
        _ body: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8"
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func jsonString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s], options: [])) ?? Data("[\"\"]".utf8)
        let array = String(decoding: data, as: UTF8.self)
        return String(array.dropFirst().dropLast())
    }
}
