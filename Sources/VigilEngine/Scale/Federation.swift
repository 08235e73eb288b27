import Foundation
import Logging
import ServiceLifecycle
import VigilCore

/// `federation:` as a service. Every `every` it copies the workers' models, publishes their
/// average (weighted by the examples each learned from) to the models topic, reads the newest
/// of every peer instance of the same topology, and has the workers take the FedAvg of them all,
/// this instance's own included (Flower's semantics: weights are examples seen). Only
/// parameters cross instances, never events; a model is averaged only with replicas of its
/// own version, so peers running another topology version leave it alone.
public struct Federation: Service {
    public let engine: KafkaEngine
    private let clock: EngineClock

    public init(engine: KafkaEngine, clock: EngineClock = .continuous) {
        self.engine = engine
        self.clock = clock
    }

    public func run() async throws {
        var link: FederationLink?
        defer { link?.close() }
        while true {
            guard await clock.nextRound(after: engine.topology.federation?.every ?? .seconds(5)) else { return }
            guard let spec = engine.topology.federation, engine.phase == .running else { continue }
            do {
                if link?.topic != spec.topic {
                    link?.close()
                    link = nil
                    let clients = engine.clients
                    let logger = engine.logger
                    link = try await Blocking.run {
                        try FederationLink(topic: spec.topic, clients: clients, logger: logger)
                    }
                }
                if let link { try await round(spec, link) }
            } catch {
                engine.logger.warning("Federation round failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One round: copy, publish, read, average, adopt.
    func round(_ spec: FederationSpec, _ link: FederationLink) async throws {
        guard case .models(let gather) = await engine.requests.submit(.gatherModels),
            let parts = await gather.value(), let first = parts.first
        else { return }
        // This instance's own average of each model over its workers.
        var own: [(version: String, model: ModelSet.Decoded, weight: Double)] = []
        for (m, version) in first.versions.enumerated() {
            let replicas = parts.map { (model: $0.models[m], weight: $0.weights[m]) }
            let weight = replicas.reduce(0) { $0 + $1.weight }
            own.append((version, ModelSet.average(replicas) ?? first.models[m], weight))
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let record = FederatedModels(
            topology: engine.topology.name, instance: engine.instance, publishedMs: now,
            entries: own.map { entry in
                var body = BinaryWriter()
                entry.model.encode(into: &body)
                return FederatedModels.Entry(version: entry.version, weight: entry.weight, body: body.bytes)
            })
        let (everyone, bytes) = try await Blocking.run { try link.exchange(record) }
        let peers = everyone.filter {
            $0.topology == record.topology && $0.instance != record.instance
                && now - $0.publishedMs <= spec.maxAge.wholeMilliseconds
        }
        var averages: [String: ModelSet.Decoded] = [:]
        var used = Set<String>()
        for entry in own {
            var replicas = [(model: entry.model, weight: entry.weight)]
            for peer in peers {
                guard let theirs = peer.entries.first(where: { $0.version == entry.version }), theirs.weight > 0 else {
                    continue
                }
                do {
                    let replica = try entry.model.decodeReplica(theirs.body)
                    guard replica.isReplica(of: entry.model) else { continue }
                    replicas.append((replica, theirs.weight))
                    used.insert(peer.instance)
                } catch {
                    engine.logger.warning(
                        "Federation: a peer's model could not be read",
                        metadata: ["peer": "\(peer.instance)", "model": "\(entry.version)", "error": "\(error)"])
                }
            }
            if replicas.count > 1, let average = ModelSet.average(replicas) { averages[entry.version] = average }
        }
        if !averages.isEmpty {
            let snapshots = parts.map { part in
                Dictionary(zip(part.versions, part.models).map { ($0, $1) }, uniquingKeysWith: { a, _ in a })
            }
            _ = await engine.requests.submit(.adoptModels(averages, snapshots: snapshots))
        }
        engine.stats.federated(peers: used.count, averaged: averages.count, bytes: bytes)
        engine.logger.debug(
            "Federation round",
            metadata: ["peers": "\(used.sorted())", "models averaged": "\(averages.count)", "bytes": "\(bytes)"])
    }
}
