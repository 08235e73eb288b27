import VigilCore
import VigilFeatures
import VigilModels

extension Topology {
    /// Decodes and validates a whole topology document.
    /// - Returns: the topology, or nil with every problem in `diagnostics`.
    public static func decode(_ root: ConfigNode, _ d: ConfigDiagnostics) -> Topology? {
        guard let o = ConfigObject(root, at: .root, diagnostics: d) else { return nil }
        let name = o.string("name", required: true)
        if let name, !isSlug(name) {
            o.report("name", "'\(name)' must be 1 to 64 letters, digits, '-' or '_'")
        }
        let description = o.string("description")
        let schema = o.node("fields", required: true).map { Schema.decode($0, at: o.path.key("fields"), d) }
        let source = o.object("source", required: true).flatMap { decodeSource($0, schema: schema) }
        let features = o.list("features", required: true).map { items in
            if items.isEmpty { o.report("features", "must declare at least one feature") }
            return FeatureSpec.decodeList(items, schema: schema ?? Schema(fields: []), d)
        }
        let state =
            o.object("state").map { StateSpec.decode($0, longestWindow: features.flatMap(longestWindow)) }
            ?? StateSpec()
        let models = o.list("models", required: true).map { items in
            let categories = features?.filter { if case .category = $0.kind { true } else { false } }.map(\.name)
            let models = ModelSpec.decodeList(
                items, features: features?.map(\.name) ?? [], categoryFeatures: categories ?? [], d)
            // Only when every entry decoded: a broken entry might have been the active one.
            if models.count == items.count, !models.contains(where: { $0.role == .active }) {
                o.report("models", "needs at least one model with role active (the one that alerts)")
            }
            return models
        }
        let hasLabels = models?.contains { $0.kind.labels != nil } ?? false
        let threshold = o.object("threshold").map { ThresholdSpec.decode($0, hasLabels: hasLabels) } ?? ThresholdSpec()
        let alerts = o.object("alerts", required: true).flatMap(decodeAlerts)
        let deadLetter = o.object("dead_letter", required: true).flatMap(decodeDeadLetter)
        let checkpoints = o.object("checkpoints").flatMap(decodeCheckpoints)
        let admin = o.object("admin").flatMap(decodeAdmin)
        let audit = o.object("audit").flatMap(decodeAudit)
        let segments = o.strings("segments") ?? []
        for (i, field) in segments.enumerated() where schema?[field] == nil {
            d.report(
                o.path.key("segments").index(i),
                "unknown field '\(field)'"
                    + Suggestions.hint(for: field, in: schema?.fields.map(\.name) ?? [], noun: "a declared field"),
                at: o.valueMark("segments"))
        }
        let ensemble = o.object("ensemble").map(EnsembleSpec.decode) ?? EnsembleSpec()
        let rolloutGuard = o.object("guard").map(GuardSpec.decode)
        let federation = o.object("federation").flatMap(FederationSpec.decode)
        let experiment = o.object("experiment").flatMap {
            ExperimentSpec.decode($0, active: models?.filter { $0.role == .active }.map(\.name) ?? [])
        }
        let drift = o.object("drift").flatMap {
            DriftSpec.decode($0, modelNames: models?.map(\.name) ?? [], featureNames: features?.map(\.name) ?? [])
        }
        if rolloutGuard != nil, models?.contains(where: { $0.role != .active }) == false {
            o.report("guard", "needs a challenger: a model with role shadow or canary")
        }
        o.finish()

        if let source, let alerts, let deadLetter {
            checkDistinctTopics(
                o, source: source, alerts: alerts, deadLetter: deadLetter, checkpoints: checkpoints, audit: audit,
                federation: federation, models: models ?? [])
        }
        guard d.isEmpty, let name, let source, let schema, let features, let models, let alerts, let deadLetter else {
            return nil
        }
        return Topology(
            name: name, description: description, source: source, schema: schema, features: features, state: state,
            models: models, threshold: threshold, alerts: alerts, deadLetter: deadLetter, checkpoints: checkpoints,
            admin: admin, audit: audit, experiment: experiment, drift: drift, rolloutGuard: rolloutGuard,
            federation: federation, segments: segments, ensemble: ensemble)
    }

    private static func longestWindow(_ features: [FeatureSpec]) -> Duration? {
        features.compactMap { feature -> Duration? in
            if case .window(_, let length, _, _) = feature.kind { return length }
            return nil
        }.max()
    }

    private static func isSlug(_ s: String) -> Bool {
        (1...64).contains(s.utf8.count)
            && s.unicodeScalars.allSatisfy {
                ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "-" || $0 == "_"
            }
    }

    private static func decodeSource(_ o: ConfigObject, schema: Schema?) -> SourceSpec? {
        let kafka = o.object("kafka", required: true).flatMap(decodeKafka)
        let format = o.choice("format", as: SourceSpec.Format.self, noun: "format") ?? .json
        let key = o.string("key", required: true)
        let id = o.string("id")
        let maxEventBytes = o.int("max_event_bytes", in: 64...16_777_216) ?? 65_536
        var time: EventTimeSpec?
        if let node = o.node("time") {
            time = decodeTime(node, at: o.path.key("time"), o.diagnostics, schema: schema)
        }
        if let schema {
            if let key { schema.check(key, key: "key", in: o, types: [.string, .category], role: "the entity key") }
            if let id {
                schema.check(id, key: "id", in: o, types: [.string, .category, .number], role: "the event id")
            }
        }
        o.finish()
        guard let kafka, let key else { return nil }
        return SourceSpec(kafka: kafka, format: format, key: key, id: id, time: time, maxEventBytes: maxEventBytes)
    }

    private static func decodeKafka(_ o: ConfigObject) -> KafkaSourceSpec? {
        var brokers = o.strings("brokers", required: true)
        if let list = brokers {
            brokers = list.flatMap { $0.split(separator: ",").map { String($0.filter { $0 != " " }) } }
            for b in brokers ?? [] where !isHostPort(b) {
                o.report("brokers", "'\(b)' is not host:port (for example 127.0.0.1:9092)")
            }
            if brokers?.isEmpty == true { o.report("brokers", "must name at least one broker") }
        }
        let topics = o.strings("topics", required: true)
        for t in topics ?? [] { KafkaNames.checkTopic(t, key: "topics", in: o) }
        if topics?.isEmpty == true { o.report("topics", "must name at least one topic") }
        let group = o.string("group", required: true)
        if group?.isEmpty == true { o.report("group", "must not be empty") }
        let start = o.choice("start_from", as: KafkaSourceSpec.StartFrom.self, noun: "start position") ?? .latest
        let properties = decodeProperties("properties", o)
        let consumerProperties = decodeProperties("consumer_properties", o)
        let producerProperties = decodeProperties("producer_properties", o)
        let createTopics = o.bool("create_topics") ?? false
        let partitions = o.int("partitions", in: 1...10_000) ?? 4
        let assignment =
            o.choice("assignment", as: KafkaSourceSpec.Assignment.self, noun: "assignment strategy")
            ?? .cooperativeSticky
        o.finish()
        guard let brokers, let topics, let group else { return nil }
        return KafkaSourceSpec(
            brokers: brokers, topics: topics, group: group, startFrom: start, properties: properties,
            consumerProperties: consumerProperties, producerProperties: producerProperties, createTopics: createTopics,
            partitions: partitions, assignment: assignment)
    }

    /// A mapping of librdkafka properties: strings, none of those Vigil manages, and well-formed
    /// secret references (they resolve when the clients are made: `SecretProperties`).
    private static func decodeProperties(_ key: String, _ o: ConfigObject) -> [String: String] {
        var properties: [String: String] = [:]
        for entry in o.entries(key) ?? [] {
            let path = o.path.key(key).key(entry.key)
            guard let value = ConfigScalar.string(entry.value, at: path, o.diagnostics) else { continue }
            properties[entry.key] = value
            do {
                _ = try SecretProperties.expand(value, key: entry.key, environment: [:])
            } catch {
                // Only the syntax is checked here: an unset variable is the running host's matter.
                if !error.message.hasSuffix("is not set") {
                    o.diagnostics.report(
                        path, String(error.message.split(separator: ": ", maxSplits: 1).last ?? ""), at: o.mark)
                }
            }
        }
        let managed = ["bootstrap.servers", "group.id", "enable.auto.commit", "enable.auto.offset.store"]
        for name in managed where properties[name] != nil || properties[name + SecretProperties.fileSuffix] != nil {
            o.diagnostics.report(
                o.path.key(key).key(name), "is managed by Vigil; set it through the typed keys", at: o.mark)
        }
        return properties
    }

    static func isHostPort(_ s: String) -> Bool {
        guard let colon = s.lastIndex(of: ":"), colon != s.startIndex, let port = Int(s[s.index(after: colon)...])
        else {
            return false
        }
        return (1...65535).contains(port)
    }

    /// `time: ts` or `time: { field: ts, format: …, allowed_lateness: …, late: …, missing: … }`.
    private static func decodeTime(
        _ node: ConfigNode, at path: ConfigPath, _ d: ConfigDiagnostics, schema: Schema?
    ) -> EventTimeSpec? {
        var spec = EventTimeSpec(
            field: "", format: .auto, allowedLateness: .seconds(30), late: .scoreOnly, missing: .arrivalTime)
        let field: String?
        var fieldPath = path
        if case .scalar = node.content {
            field = ConfigScalar.string(node, at: path, d)
        } else {
            guard let o = ConfigObject(node, at: path, diagnostics: d) else { return nil }
            field = o.string("field", required: true)
            fieldPath = path.key("field")
            spec.format = o.choice("format", as: EventTimeSpec.Format.self, noun: "time format") ?? .auto
            spec.allowedLateness =
                o.duration("allowed_lateness", in: .zero ... .seconds(86_400)) ?? spec.allowedLateness
            spec.late = o.choice("late", as: EventTimeSpec.LatePolicy.self, noun: "late policy") ?? spec.late
            spec.missing =
                o.choice("missing", as: EventTimeSpec.MissingPolicy.self, noun: "missing policy") ?? spec.missing
            spec.maxFuture = o.duration("max_future", in: .zero ... .seconds(365 * 86_400)) ?? spec.maxFuture
            spec.future =
                o.choice("future", as: EventTimeSpec.FuturePolicy.self, noun: "future policy") ?? spec.future
            o.finish()
        }
        guard let field else { return nil }
        if let schema,
            schema.check(field, at: fieldPath, mark: node.mark, d, types: [.timestamp, .number], role: "event time")
                == nil
        {
            return nil
        }
        spec.field = field
        return spec
    }

    private static func decodeAlerts(_ o: ConfigObject) -> AlertsSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        let explain = o.int("explain", in: 0...20) ?? 3
        o.finish()
        return topic.map { AlertsSpec(topic: $0, explain: explain) }
    }

    private static func decodeDeadLetter(_ o: ConfigObject) -> DeadLetterSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        o.finish()
        return topic.map(DeadLetterSpec.init)
    }

    private static func decodeCheckpoints(_ o: ConfigObject) -> CheckpointSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        let every = o.duration("every", in: .seconds(1) ... .seconds(86_400)) ?? .seconds(30)
        let everyEvents = o.int("every_events", in: 1000...Int.max)
        let keep = o.int("keep", in: 1...100) ?? 5
        let directory = o.string("directory")
        o.finish()
        return topic.map {
            CheckpointSpec(topic: $0, every: every, everyEvents: everyEvents, keep: keep, directory: directory)
        }
    }

    private static func decodeAudit(_ o: ConfigObject) -> AuditSpec? {
        let topic = o.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: o) }
        o.finish()
        return topic.map(AuditSpec.init)
    }

    private static func decodeAdmin(_ o: ConfigObject) -> AdminSpec? {
        // Loopback unless the topology says otherwise.
        let listen = o.string("listen") ?? "127.0.0.1:9464"
        let tokenEnv = o.string("token_env") ?? "VIGIL_ADMIN_TOKEN"
        let tokenFile = o.string("token_file")
        o.finish()
        guard isHostPort(listen), let colon = listen.lastIndex(of: ":") else {
            o.report("listen", "'\(listen)' is not host:port (for example 127.0.0.1:9464)")
            return nil
        }
        return AdminSpec(
            host: String(listen[..<colon]), port: Int(listen[listen.index(after: colon)...])!, tokenEnv: tokenEnv,
            tokenFile: tokenFile)
    }

    /// Outputs must not feed back into the input, and each output needs its own topic.
    private static func checkDistinctTopics(
        _ o: ConfigObject, source: SourceSpec, alerts: AlertsSpec, deadLetter: DeadLetterSpec,
        checkpoints: CheckpointSpec?,
        audit: AuditSpec?, federation: FederationSpec?, models: [ModelSpec]
    ) {
        var outputs: [(path: String, key: String, topic: String)] = [
            ("alerts", "topic", alerts.topic), ("dead_letter", "topic", deadLetter.topic),
        ]
        if let checkpoints { outputs.append(("checkpoints", "topic", checkpoints.topic)) }
        if let audit { outputs.append(("audit", "topic", audit.topic)) }
        if let federation { outputs.append(("federation", "topic", federation.topic)) }
        var seen: [String: String] = [:]
        for t in source.kafka.topics { seen[t] = "source.kafka.topics" }
        for m in models {
            if let l = m.kind.labels { seen[l.topic] = seen[l.topic] ?? "models[\(m.name)].labels.topic" }
        }
        for out in outputs {
            if let other = seen[out.topic] {
                o.diagnostics.report(
                    ConfigPath.root.key(out.path).key(out.key),
                    "topic '\(out.topic)' is already used by \(other); each output needs its own topic", at: nil)
            }
            seen[out.topic] = "\(out.path).\(out.key)"
        }
    }
}
