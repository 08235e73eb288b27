import VigilModels

extension Pipeline {
    /// What the pipeline did; complete after `finish()`.
    public func summary() -> Summary {
        var s = Summary()
        s.events = builder.records
        s.deadLetters = builder.deadLetters
        var metrics: [PrequentialMetrics] = []
        for w in workers {
            s.scored += w.counters.scored
            s.alerts += w.counters.alerts
            s.suppressed += w.counters.suppressed
            s.lateScored += w.counters.lateScored
            s.labelsJoined += w.counters.labelsJoined
            s.labelsJoinedEarly += w.counters.labelsJoinedEarly
            if w.counters.lateDeadLettered > 0 { s.deadLetters[.late, default: 0] += w.counters.lateDeadLettered }
            s.entities += w.extractor.entityCount
            s.stateBytes += w.extractor.stateBytes
            s.evictedForCapacity += w.extractor.counters.evictedForCapacity
            s.evictedIdle += w.extractor.counters.evictedIdle
            metrics.append(w.metrics)
        }
        s.labelsReceived = labelsReceived
        s.quality = PrequentialMetrics.merged(metrics)
        s.threshold = workers.map(\.threshold.current).reduce(0, +) / Double(workers.count)
        return s
    }

    /// Totals of a run, for the closing summary.
    public struct Summary: Sendable {
        /// Input records read.
        public var events = 0
        public var scored = 0
        public var alerts = 0
        /// Flagged but within an entity's suppression interval.
        public var suppressed = 0
        public var lateScored = 0
        public var deadLetters: [DeadLetterReason.Code: Int] = [:]
        public var labelsReceived = 0
        public var labelsJoined = 0
        /// Of `labelsJoined`, labels that reached their worker before their event (held in its
        /// small table of early labels, where a busy stream can overwrite them).
        public var labelsJoinedEarly = 0
        /// Label records that could not be read (dead-lettered by `run`).
        public var labelsMalformed = 0
        public var entities = 0
        public var stateBytes = 0
        /// Entities evicted because `state.max_entities` was reached, and because they were idle.
        public var evictedForCapacity = 0
        public var evictedIdle = 0
        /// Mean of the workers' live thresholds.
        public var threshold = 0.0
        /// Prequential quality over the joined labels (nil members where undefined).
        public var quality = PrequentialMetrics(window: 1).report()

        public var deadLetterTotal: Int { deadLetters.values.reduce(0, +) }
    }
}

extension PrequentialMetrics {
    /// One report over the labelled events of several workers.
    static func merged(_ parts: [PrequentialMetrics]) -> Report {
        var all = PrequentialMetrics(window: max(1, parts.map(\.total).reduce(0, +)))
        for p in parts { p.forEachEntry { all.add(score: $0, label: $1, alerted: $2) } }
        return all.report()
    }
}

extension Pipeline.Summary {
    /// Adds the counters of another pipeline's run (a reload replaced it).
    mutating func add(_ o: Pipeline.Summary) {
        events += o.events
        scored += o.scored
        alerts += o.alerts
        suppressed += o.suppressed
        lateScored += o.lateScored
        for (k, v) in o.deadLetters { deadLetters[k, default: 0] += v }
        labelsReceived += o.labelsReceived
        labelsJoined += o.labelsJoined
        labelsJoinedEarly += o.labelsJoinedEarly
    }
}
