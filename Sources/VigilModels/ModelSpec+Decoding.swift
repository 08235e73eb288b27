import Foundation
import VigilCore

extension ModelSpec {
    /// Decodes the `models:` list. `features` are the declared feature names that `features:`
    /// subsets may name; `fields` are the event fields a label join may not shadow.
    /// `categoryFeatures` are those of kind `category`, which an imported model cannot read.
    public static func decodeList(
        _ items: [(node: ConfigNode, path: ConfigPath)], features: [String], categoryFeatures: [String] = [],
        _ d: ConfigDiagnostics
    ) -> [ModelSpec] {
        var models: [ModelSpec] = []
        var names: [String] = []
        for (node, path) in items {
            let issuesBefore = d.issues.count
            guard let o = ConfigObject(node, at: path, diagnostics: d) else { continue }
            let name = o.string("name", required: true)
            if let name {
                if names.contains(name) { o.report("name", "duplicate model name '\(name)'") }
                names.append(name)
            }
            let role = o.choice("role", as: Role.self, noun: "role") ?? .active
            let weight = o.double("weight", in: .nonNegative) ?? 1
            var share: Double?
            if role == .canary {
                share = o.double("share", in: .openUnit, required: true)
            } else if o.node("share") != nil {
                o.report("share", "applies only to role canary")
            }
            var subset: [String]?
            if let wanted = o.strings("features") {
                for (i, f) in wanted.enumerated() where !features.contains(f) {
                    d.report(
                        o.path.key("features").index(i),
                        "unknown feature '\(f)'" + Suggestions.hint(for: f, in: features, noun: "a declared feature"),
                        at: o.valueMark("features"))
                }
                if wanted.isEmpty { o.report("features", "must name at least one feature (or be left out for all)") }
                subset = wanted
            }
            let seed = o.int("seed", in: 0...Int.max).map(UInt64.init) ?? 0
            let initFile = o.string("init")
            var replaces: [String]?
            var group: String?
            if role == .active {
                for key in ["replaces", "group"] where o.node(key) != nil {
                    o.report(key, "applies only to a challenger (role shadow or canary)")
                }
            } else {
                replaces = o.strings("replaces")
                if replaces?.isEmpty == true { o.report("replaces", "must name at least one model (or be left out)") }
                group = o.string("group")
            }
            guard let tag = o.choice("kind", as: Tag.self, required: true, noun: "model kind") else { continue }
            let kind: Kind?
            switch tag {
            case .isolationForest: kind = decodeForest(o).map(Kind.isolationForest)
            case .countingIsolationForest: kind = decodeForest(o).map(Kind.countingIsolationForest)
            case .logisticRegression: kind = decodeRegression(o).map(Kind.logisticRegression)
            }
            var initial: ImportedModel?
            if let initFile {
                initial = loadInitial(
                    initFile, tag: tag, subset: &subset, features: features, categoryFeatures: categoryFeatures, o, d)
            }
            o.finish(context: "for kind \(tag.rawValue)")
            if let name, let kind, d.issues.count == issuesBefore {
                var spec = ModelSpec(
                    name: name, role: role, weight: weight, canaryShare: share, features: subset, seed: seed,
                    replaces: replaces, group: group, kind: kind)
                spec.initFile = initFile
                spec.initial = initial
                models.append(spec)
            }
        }
        if models.count == items.count { checkReplacements(models, items: items, d) }
        if items.count > 56, let last = items.last {
            d.report(last.path, "at most 56 models (a topology has \(items.count))", at: last.node.mark)
        }
        return models
    }

    /// Reads the file under `init`: of the model's kind, its columns declared numeric features,
    /// and the model's `features` (when given) the same set. The model then reads exactly the
    /// file's columns.
    private static func loadInitial(
        _ file: String, tag: Tag, subset: inout [String]?, features: [String], categoryFeatures: [String],
        _ o: ConfigObject, _ d: ConfigDiagnostics
    ) -> ImportedModel? {
        guard tag == .isolationForest || tag == .logisticRegression else {
            o.report("init", "applies to isolation_forest and logistic_regression only")
            return nil
        }
        let path =
            file.hasPrefix("/") || d.baseDirectory == nil
            ? file : URL(fileURLWithPath: d.baseDirectory!).appendingPathComponent(file).path
        guard let data = FileManager.default.contents(atPath: path) else {
            o.report("init", "cannot read \(path)")
            return nil
        }
        let model: ImportedModel
        do {
            model = try ImportedModel.parse(data)
        } catch {
            o.report("init", "\(path): \(error.reason)")
            return nil
        }
        guard model.kindName == tag.rawValue else {
            o.report("init", "\(path) holds a \(model.kindName), not a \(tag.rawValue)")
            return nil
        }
        for column in model.columns {
            if categoryFeatures.contains(column) {
                o.report(
                    "init", "\(path): column '\(column)' is a category feature; imported models read numeric features")
            } else if !features.contains(column) {
                o.report(
                    "init",
                    "\(path): column '\(column)' is not a declared feature"
                        + Suggestions.hint(for: column, in: features, noun: "a declared feature"))
            }
        }
        if let subset, Set(subset) != Set(model.columns) {
            o.report(
                "features",
                "must be the columns of \(file) (\(model.columns.joined(separator: ", "))), or be left out")
        }
        subset = model.columns
        return model
    }

    /// `replaces` names declared models, never the challenger itself; a group shares no name
    /// with a model (`models promote` takes either).
    private static func checkReplacements(
        _ models: [ModelSpec], items: [(node: ConfigNode, path: ConfigPath)], _ d: ConfigDiagnostics
    ) {
        let names = models.map(\.name)
        for (model, item) in zip(models, items) {
            let mark = item.node.mark
            for (i, target) in (model.replaces ?? []).enumerated() {
                let path = item.path.key("replaces").index(i)
                if target == model.name {
                    d.report(path, "a model cannot replace itself", at: mark)
                } else if !names.contains(target) {
                    d.report(
                        path, "unknown model '\(target)'" + Suggestions.hint(for: target, in: names, noun: "a model"),
                        at: mark)
                }
            }
            if let group = model.group, names.contains(group) {
                d.report(item.path.key("group"), "group '\(group)' has the name of a model; give it another", at: mark)
            }
        }
    }

    private static func decodeForest(_ o: ConfigObject) -> IsolationForestSpec? {
        let trees = o.int("trees", in: 1...1000) ?? 100
        let sample = o.int("sample", in: 16...4096) ?? 256
        let window = o.int("window_events", in: 16...100_000_000)
        if let window, window < sample {
            o.report("window_events", "must be ≥ sample (\(sample)), got \(window)")
            return nil
        }
        return IsolationForestSpec(trees: trees, sample: sample, windowEvents: window)
    }

    private static func decodeRegression(_ o: ConfigObject) -> LogisticRegressionSpec? {
        let optimizer = o.choice("optimizer", as: LogisticRegressionSpec.Optimizer.self, noun: "optimizer") ?? .ftrl
        let rate = o.double("learning_rate", in: NumberRange(0, 10, lowerOpen: true)) ?? 0.2
        let l1 = o.double("l1", in: .nonNegative) ?? 0
        let l2 = o.double("l2", in: .nonNegative) ?? 0.001
        let positive = o.double("positive_weight", in: NumberRange(0, 10_000, lowerOpen: true)) ?? 1
        guard let lo = o.object("labels", required: true) else { return nil }
        let topic = lo.string("topic", required: true)
        if let topic { KafkaNames.checkTopic(topic, key: "topic", in: lo) }
        let key = lo.string("key") ?? "id"
        let field = lo.string("field") ?? "label"
        let expire = lo.duration("expire", in: .seconds(1) ... .seconds(7 * 86_400)) ?? .seconds(3600)
        lo.finish()
        guard let topic else { return nil }
        return LogisticRegressionSpec(
            optimizer: optimizer, learningRate: rate, l1: l1, l2: l2, positiveWeight: positive,
            labels: LabelSource(topic: topic, key: key, field: field, expire: expire))
    }
}

extension ThresholdSpec {
    /// Decodes `threshold:`; `hasLabels` tells whether any model learns from labels (mode
    /// precision needs them).
    public static func decode(_ o: ConfigObject, hasLabels: Bool) -> ThresholdSpec {
        var spec = ThresholdSpec()
        spec.mode = o.choice("mode", as: Mode.self, noun: "threshold mode") ?? .quantile
        spec.targetAlertRate = o.double("target_alert_rate", in: .openUnit) ?? spec.targetAlertRate
        switch spec.mode {
        case .quantile:
            for key in ["target_precision", "score"] where o.node(key) != nil {
                o.report(key, "applies only to mode \(key == "score" ? "fixed" : "precision")")
            }
        case .precision:
            spec.targetPrecision = o.double("target_precision", in: .openUnit, required: true)
            if !hasLabels { o.report("mode", "mode precision needs a model that learns from labels") }
            if o.node("score") != nil { o.report("score", "applies only to mode fixed") }
        case .fixed:
            spec.fixedScore = o.double("score", in: .openUnit, required: true)
            if o.node("target_precision") != nil { o.report("target_precision", "applies only to mode precision") }
        }
        spec.minScore = o.double("min_score", in: .unit) ?? spec.minScore
        spec.maxScore = o.double("max_score", in: .unit) ?? spec.maxScore
        if spec.minScore > spec.maxScore {
            o.report("max_score", "must be ≥ min_score (\(spec.minScore)), got \(spec.maxScore)")
        }
        spec.hysteresis = o.double("hysteresis", in: NumberRange(0, 0.5)) ?? 0
        spec.suppress = o.duration("suppress", in: .zero ... .seconds(7 * 86_400)) ?? .zero
        spec.protect = o.bool("protect") ?? true
        spec.warmupEvents = o.int("warmup_events", in: 0...10_000_000) ?? spec.warmupEvents
        o.finish()
        return spec
    }
}
