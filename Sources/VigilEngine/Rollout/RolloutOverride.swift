import Foundation
import VigilModels

/// The roles that promotions and rollbacks gave models, over the roles the topology file gives
/// them, with the history of every such action. The file stays the declaration; this override
/// records what was decided at run time, travels in every checkpoint, and is applied again to
/// the file at restart and at each reload (docs/topology.md, "Rollout").
///
/// An entry holds only while the file still gives the model the role it had when the entry was
/// made: editing a model's `role:` in the file takes precedence over a promotion.
public struct RolloutOverride: Sendable, Hashable, Codable {
    /// One model's role as decided at run time.
    public struct Entry: Sendable, Hashable, Codable {
        /// The role in force (`ModelSpec.Role` raw value).
        public var role: String
        /// The role the file gave the model when the entry was made.
        public var fileRole: String
    }

    /// By model name.
    public var roles: [String: Entry] = [:]
    /// Every promotion and rollback, oldest first.
    public var history: [RolloutEvent] = []

    public init() {}

    /// `file` with the roles of this override.
    func effective(_ file: Topology) -> Topology {
        var t = file
        for i in t.models.indices {
            let spec = t.models[i]
            guard let entry = roles[spec.name], entry.fileRole == spec.role.rawValue,
                let role = ModelSpec.Role(rawValue: entry.role)
            else { continue }
            t.models[i].role = role
            if role == .canary, t.models[i].canaryShare == nil { t.models[i].role = .shadow }
        }
        t.rollout = roles.isEmpty && history.isEmpty ? nil : self
        return t
    }

    /// Sets `name`'s role, remembering the role the file gave it.
    mutating func set(_ name: String, _ role: ModelSpec.Role, file: Topology) {
        guard let spec = file.models.first(where: { $0.name == name }) else { return }
        if spec.role == role {
            roles[name] = nil
        } else {
            roles[name] = Entry(role: role.rawValue, fileRole: spec.role.rawValue)
        }
    }

    /// The JSON the checkpoint's `rollout` section holds.
    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array((try? encoder.encode(self)) ?? Data("{}".utf8))
    }

    init(decoding bytes: [UInt8]) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(bytes))
    }
}

/// One promotion or rollback: who, why, what changed, and every model's figures at the moment.
public struct RolloutEvent: Sendable, Hashable, Codable {
    /// What was done.
    public enum Action: String, Sendable, Hashable, Codable {
        /// Challengers became active; the models they replace became shadows.
        case promote
        /// A promotion was undone: every model it touched has its role from before.
        case rollback
        /// A canary stopped alerting (it goes on as a shadow).
        case canaryRollback = "canary_rollback"
    }

    /// 1, 2, … per topology.
    public var sequence: Int
    public var timeMs: Int64
    public var action: Action
    /// Who asked: the `--by` of the command, or `guard`.
    public var by: String
    public var reason: String
    /// Versions (`name@hash`) that became active, and those that stopped alerting.
    public var activated: [String]
    public var deactivated: [String]
    /// Each touched model's role before the action (by name): what a rollback restores.
    public var rolesBefore: [String: String]
    /// Each model's live figures at the moment (by name): AUC, AP, F1, alert rate, labelled.
    public var metrics: [String: [String: Double]]
    /// For a promotion: the sequence of the rollback that undid it.
    public var undoneBy: Int?
}

extension ModelQuality {
    /// The figures an audit record keeps (undefined ones left out).
    var auditFigures: [String: Double] {
        var o: [String: Double] = ["labelled": Double(labelled), "positives": Double(positives)]
        if let v = rocAUC { o["roc_auc"] = v }
        if let v = averagePrecision { o["average_precision"] = v }
        if let v = precision { o["precision"] = v }
        if let v = recall { o["recall"] = v }
        if let v = f1 { o["f1"] = v }
        if let v = alertRate { o["alert_rate"] = v }
        if let v = alertOverlap { o["alert_overlap"] = v }
        if let v = rankCorrelation { o["rank_correlation"] = v }
        return o
    }
}
