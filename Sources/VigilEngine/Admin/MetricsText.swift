import Foundation
import VigilKafka

/// `/metrics`: the engine's registry (its event-path instruments, ``EngineMetrics``, and the
/// figures read here at scrape time) followed by the process's swift-metrics registry (the Kafka
/// clients'), in the Prometheus text exposition format (version 0.0.4).
public enum MetricsText {
    public static func render(
        _ engine: KafkaEngine, models: [ModelQuality] = [], arms: [ArmQuality] = [], segments: [SegmentReport] = []
    ) -> String {
        let metrics = engine.stats.metrics
        metrics.scraped.withLock { state in
            var out = ScrapeWriter(registry: metrics.registry, previous: state)
            collect(engine, models: models, arms: arms, segments: segments, into: &out)
            state = out.finish()
        }
        return metrics.text + MetricsBackend.text
    }

    /// The figures kept in the engine's state, read now.
    private static func collect(
        _ engine: KafkaEngine, models: [ModelQuality], arms: [ArmQuality], segments: [SegmentReport],
        into out: inout ScrapeWriter
    ) {
        let s = engine.stats
        let g = engine.stateGauges
        let topology = engine.topology
        out.gauge("vigil_threshold", "The live alert threshold (mean over workers).", g.threshold)
        // The settings alert rules compare against (deploy/prometheus/vigil-rules.yaml).
        if topology.threshold.mode == .quantile {
            out.gauge(
                "vigil_target_alert_rate", "The topology's target share of events that alert (quantile mode).",
                topology.threshold.targetAlertRate)
        }
        if let every = topology.checkpoints?.every {
            out.gauge(
                "vigil_checkpoint_interval_seconds", "The topology's time between checkpoints.",
                Double(every.components.seconds) + Double(every.components.attoseconds) * 1e-18)
        }
        out.header("vigil_score_quantile", "Score quantiles, read from vigil_score's buckets.", "gauge")
        for q in [0.5, 0.9, 0.99] {
            if let v = s.scores.quantile(q) { out.sample("vigil_score_quantile", ["quantile": String(q)], v) }
        }
        out.header(
            "vigil_consumer_lag", "Records not yet done per source partition (high watermark minus done offset).",
            "gauge")
        for (tp, lag) in engine.consumerLag.sorted(by: { $0.key < $1.key }) {
            out.sample("vigil_consumer_lag", ["topic": tp.topic, "partition": String(tp.partition)], Double(lag))
        }
        let inFlight = engine.recordsInFlight
        out.gauge(
            "vigil_records_in_flight", "Records between poll and outputs handed to the producer.", Double(inFlight.now))
        out.gauge(
            "vigil_records_in_flight_limit",
            "Records in flight at most: reading waits while the engine holds this many.",
            Double(inFlight.limit))
        out.gauge(
            "vigil_labels_held", "Labels read and held until the source events reach their time.",
            Double(engine.labelsHeld))
        out.gauge("vigil_active_entities", "Entities with window state.", Double(g.entities))
        out.header("vigil_evictions_total", "Entities evicted from the windows, by cause.", "counter")
        out.sample("vigil_evictions_total", ["cause": "idle"], Double(g.evictedIdle))
        out.sample("vigil_evictions_total", ["cause": "capacity"], Double(g.evictedForCapacity))
        let keyed = engine.keyedStateGauges
        if !keyed.isEmpty {
            out.header(
                "vigil_keyed_entities", "Entities with state in the features keyed by another field, by that field.",
                "gauge")
            for k in keyed { out.sample("vigil_keyed_entities", ["key": k.key], Double(k.entities)) }
            out.header(
                "vigil_keyed_evictions_total", "Entities evicted from the features keyed by another field, by cause.",
                "counter")
            for k in keyed {
                out.sample("vigil_keyed_evictions_total", ["key": k.key, "cause": "idle"], Double(k.evictedIdle))
                out.sample(
                    "vigil_keyed_evictions_total", ["key": k.key, "cause": "capacity"], Double(k.evictedForCapacity))
            }
        }
        let outputs = engine.outputs
        out.gauge(
            "vigil_outputs_held",
            "Alerts and dead letters held after a failure to publish them, waiting to be sent again.",
            Double(outputs.held))
        out.header(
            "vigil_output_failures_total", "Failures to publish an alert or dead letter (each held and sent again).",
            "counter")
        out.sample("vigil_output_failures_total", [:], Double(outputs.failures))
        out.header("vigil_checkpoints_total", "Checkpoints by outcome.", "counter")
        out.sample(
            "vigil_checkpoints_total", ["outcome": "written"], Double(s.checkpointsWritten.load(ordering: .relaxed)))
        out.sample(
            "vigil_checkpoints_total", ["outcome": "failed"], Double(s.checkpointsFailed.load(ordering: .relaxed)))
        let lastMs = s.checkpointTimeMs.load(ordering: .relaxed)
        if lastMs > 0 {
            out.gauge(
                "vigil_checkpoint_age_seconds", "Seconds since the last checkpoint was cut.",
                Date().timeIntervalSince1970 - Double(lastMs) / 1000)
            out.gauge(
                "vigil_checkpoint_bytes", "Size of the last checkpoint.",
                Double(s.checkpointBytes.load(ordering: .relaxed)))
            out.gauge(
                "vigil_checkpoint_write_seconds",
                "Time to write the last checkpoint (waiting for outputs, encoding, publishing).",
                Double(s.checkpointWriteNanos.load(ordering: .relaxed)) / 1e9)
            out.gauge(
                "vigil_checkpoint_sequence", "Sequence number of the last checkpoint.",
                Double(s.checkpointSequence.load(ordering: .relaxed)))
        }
        out.header(
            "vigil_partition_handoffs_total",
            "Source partitions whose windows were loaded when assigned (in) or published when revoked (out).",
            "counter")
        out.sample("vigil_partition_handoffs_total", ["direction": "in"], Double(s.handoffsIn.load(ordering: .relaxed)))
        out.sample(
            "vigil_partition_handoffs_total", ["direction": "out"], Double(s.handoffsOut.load(ordering: .relaxed)))
        out.gauge(
            "vigil_stream_share",
            "This instance's share of the source partitions: its forests keep that share of their window.",
            Double(s.streamShareMillionths.load(ordering: .relaxed)) / 1e6)
        out.counter(
            "vigil_federation_rounds_total", "Federation rounds that averaged models with peers' models.",
            s.federationRounds.load(ordering: .relaxed))
        out.gauge(
            "vigil_federation_peers", "Peer instances whose models the last federation round averaged.",
            Double(s.federationPeers.load(ordering: .relaxed)))
        out.gauge(
            "vigil_federation_bytes", "Size of the last models record this instance published (LZ4).",
            Double(s.federationBytes.load(ordering: .relaxed)))
        out.header("vigil_reloads_total", "Configuration changes by outcome.", "counter")
        out.sample("vigil_reloads_total", ["outcome": "applied"], Double(s.reloadsApplied.load(ordering: .relaxed)))
        out.sample("vigil_reloads_total", ["outcome": "refused"], Double(s.reloadsRefused.load(ordering: .relaxed)))
        modelFigures(models, into: &out)
        armFigures(arms, into: &out)
        segmentFigures(segments, into: &out)
        out.header(
            "vigil_drift_detections_total", "Drift records written, by detector and subject (score or feature).",
            "counter")
        for d in s.driftRecords {
            out.sample("vigil_drift_detections_total", ["detector": d.detector, "subject": d.subject], Double(d.count))
        }
        out.gauge("vigil_ready", "1 when restored, assigned and connected.", engine.isReady ? 1 : 0)
        out.gauge("vigil_uptime_seconds", "Seconds since the engine started.", Date().timeIntervalSince(s.started))
    }

    /// Each model's live quality, labelled by model, version and role (docs/operations.md).
    private static func modelFigures(_ models: [ModelQuality], into out: inout ScrapeWriter) {
        let families: [(String, String, (ModelQuality) -> Double?)] = [
            ("vigil_model_roc_auc", "ROC-AUC of the model's own scores over its labelled window.", \.rocAUC),
            ("vigil_model_average_precision", "Average precision of the model's own scores.", \.averagePrecision),
            ("vigil_model_precision", "Precision at the model's own threshold.", \.precision),
            ("vigil_model_recall", "Recall at the model's own threshold.", \.recall),
            ("vigil_model_f1", "F1 at the model's own threshold.", \.f1),
            ("vigil_model_alert_rate", "Share of events the model's own threshold flags.", \.alertRate),
            ("vigil_model_labelled", "Labelled events in the model's window.", { Double($0.labelled) }),
            (
                "vigil_model_alert_overlap", "Jaccard index of the model's flags and the live ensemble's.",
                \.alertOverlap
            ),
            (
                "vigil_model_rank_correlation", "Spearman correlation of the model's scores with the final scores.",
                \.rankCorrelation
            ),
            (
                "vigil_model_ensemble_weight", "The model's weight in the ensemble now (learned from labels, or set).",
                \.ensembleWeight
            ),
        ]
        for (name, help, value) in families {
            out.header(name, help, "gauge")
            for q in models {
                guard let v = value(q) else { continue }
                out.sample(name, ["model": q.name, "version": q.version, "role": q.role.rawValue], v)
            }
        }
    }

    /// Each segment value's figures over its labelled events (labelled by field and value), and
    /// each field's gaps between values as Fairlearn defines them (docs/evaluate.md).
    private static func segmentFigures(_ reports: [SegmentReport], into out: inout ScrapeWriter) {
        guard !reports.isEmpty else { return }
        typealias Group = SegmentReport.Group
        let groupFamilies: [(String, String, String, (Group) -> Double?)] = [
            ("vigil_segment_labelled_total", "Labelled events per segment value.", "counter", { Double($0.events) }),
            (
                "vigil_segment_positives_total", "Labelled fraud per segment value.", "counter",
                { Double($0.positives) }
            ),
            (
                "vigil_segment_alerts_total", "Labelled events that alerted, per segment value.", "counter",
                { Double($0.alerts) }
            ),
            (
                "vigil_segment_selection_rate", "Share of a segment value's labelled events that alerted.", "gauge",
                \.selectionRate
            ),
            ("vigil_segment_precision", "Precision of a segment value's alerts.", "gauge", \.precision),
            (
                "vigil_segment_true_positive_rate", "Share of a segment value's fraud that alerted.", "gauge",
                \.truePositiveRate
            ),
            (
                "vigil_segment_false_positive_rate", "Share of a segment value's legitimate events that alerted.",
                "gauge", \.falsePositiveRate
            ),
        ]
        for (name, help, type, value) in groupFamilies {
            out.header(name, help, type)
            for r in reports {
                for g in r.groups {
                    guard let v = value(g) else { continue }
                    out.sample(name, ["field": r.field, "value": g.value], v)
                }
            }
        }
        let fieldFamilies: [(String, String, (SegmentReport) -> Double?)] = [
            (
                "vigil_fairness_demographic_parity_difference",
                "Largest minus smallest selection rate between a field's values.", \.demographicParityDifference
            ),
            (
                "vigil_fairness_demographic_parity_ratio",
                "Smallest over largest selection rate between a field's values.",
                \.demographicParityRatio
            ),
            (
                "vigil_fairness_equalized_odds_difference",
                "The larger of the true and false positive rate differences between a field's values.",
                \.equalizedOddsDifference
            ),
            (
                "vigil_fairness_equalized_odds_ratio",
                "The smaller of the true and false positive rate ratios between a field's values.",
                \.equalizedOddsRatio
            ),
        ]
        for (name, help, value) in fieldFamilies {
            out.header(name, help, "gauge")
            for r in reports {
                guard let v = value(r) else { continue }
                out.sample(name, ["field": r.field], v)
            }
        }
    }

    /// Each experiment arm's figures, labelled by experiment and arm; they add up to the totals.
    private static func armFigures(_ arms: [ArmQuality], into out: inout ScrapeWriter) {
        guard !arms.isEmpty else { return }
        let families: [(String, String, String, (ArmQuality) -> Double?)] = [
            ("vigil_arm_events_total", "Events scored per experiment arm.", "counter", { Double($0.events) }),
            ("vigil_arm_alerts_total", "Alerts raised per experiment arm.", "counter", { Double($0.alerts) }),
            ("vigil_arm_labelled", "Labelled events in the arm's window.", "gauge", { Double($0.report.events) }),
            ("vigil_arm_roc_auc", "ROC-AUC of the final scores in the arm.", "gauge", { $0.report.rocAUC }),
            (
                "vigil_arm_average_precision", "Average precision of the final scores in the arm.", "gauge",
                { $0.report.averagePrecision }
            ),
            ("vigil_arm_precision", "Precision of the arm's alerts.", "gauge", { $0.report.precision }),
            ("vigil_arm_recall", "Recall of the arm's alerts.", "gauge", { $0.report.recall }),
        ]
        for (name, help, type, value) in families {
            out.header(name, help, type)
            for a in arms {
                guard let v = value(a) else { continue }
                out.sample(name, ["experiment": a.experiment, "arm": a.arm], v)
            }
        }
    }
}

/// `/status`: the topology in force, model versions, threshold, rates, the last reload and the
/// last checkpoint, as one JSON object.
public enum StatusJSON {
    public static func render(
        _ engine: KafkaEngine, models quality: [ModelQuality] = [], arms: [ArmQuality] = [],
        segments: [SegmentReport] = []
    ) -> String {
        let s = engine.stats
        let t = engine.topology
        let g = engine.stateGauges
        let uptime = max(1e-9, Date().timeIntervalSince(s.started))
        let inFlight = engine.recordsInFlight
        var o: [String: Any] = [
            "topology": t.name, "phase": engine.phase.rawValue, "ready": engine.isReady,
            "model_versions": engine.modelVersions,
            "models": t.models.map { m -> [String: Any] in
                var o: [String: Any] = ["name": m.name, "role": m.role.rawValue, "weight": m.weight]
                if let q = quality.first(where: { $0.name == m.name }) {
                    o["version"] = q.version
                    o["quality"] = ModelsJSON.object(q)
                }
                return o
            },
            "threshold": [
                "current": g.threshold, "mode": t.threshold.mode.rawValue,
                "target_alert_rate": t.threshold.targetAlertRate,
            ],
            "events": s.eventsIn.load(ordering: .relaxed), "alerts": s.alerts.load(ordering: .relaxed),
            "dead_letters": s.deadLettersByReason, "entities": g.entities,
            "keyed_entities": Dictionary(engine.keyedStateGauges.map { ($0.key, $0.entities) }, uniquingKeysWith: +),
            "rates_per_second": [
                "events": Double(s.eventsIn.load(ordering: .relaxed)) / uptime,
                "alerts": Double(s.alerts.load(ordering: .relaxed)) / uptime,
            ],
            "uptime_seconds": uptime, "workers": engine.workers,
            "records_in_flight": ["now": inFlight.now, "peak": inFlight.peak, "limit": inFlight.limit],
        ]
        if let r = engine.lastReload {
            o["last_reload"] = try? JSONSerialization.jsonObject(with: Data(r.json.utf8))
        }
        if let restored = engine.restoredFrom { o["restored_from"] = restored }
        if let e = t.experiment { o["experiment"] = ["name": e.name, "arms": arms.map(ModelsJSON.arm)] }
        if !segments.isEmpty, let data = try? JSONEncoder.snakeCase.encode(segments) {
            o["segments"] = try? JSONSerialization.jsonObject(with: data)
        }
        o["assignment"] = engine.assignment.map { "\($0.topic)[\($0.partition)]" }
        o["checkpoints_written"] = s.checkpoints
        o["checkpoints_failed"] = s.checkpointFailures
        let outputs = engine.outputs
        o["outputs"] = [
            "held": outputs.held, "failures_total": outputs.failures,
            "failing": outputs.failing.map { f -> [String: Any] in
                [
                    "topic": f.topic, "since": ISO8601DateFormatter().string(from: f.since), "error": f.lastError,
                    "failures": f.count,
                ]
            },
        ]
        o["recent_alerts"] = s.recentAlerts.newestFirst.compactMap { try? JSONSerialization.jsonObject(with: Data($0)) }
        o["drift"] = s.driftRecords.map { ["detector": $0.detector, "subject": $0.subject, "count": $0.count] }
        let seq = s.checkpointSequence.load(ordering: .relaxed)
        if seq >= 0 {
            o["last_checkpoint"] = [
                "sequence": seq, "bytes": s.checkpointBytes.load(ordering: .relaxed),
                "time_ms": s.checkpointTimeMs.load(ordering: .relaxed),
            ]
        }
        let data =
            (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
