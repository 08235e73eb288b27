import Testing
import VigilSynthetic
import VigilTestKit

@Suite(.ownThread) struct TransactionStreamTests {
    static func config(_ events: Int = 50_000, seed: UInt64 = 3) -> TransactionStream.Config {
        var c = TransactionStream.Config()
        c.events = events
        c.seed = seed
        c.cards = 2_000
        c.fraudEpisodeRate = 0.003
        return c
    }

    @Test func sameSeedSameStreamOtherSeedOtherStream() {
        let a = Array(TransactionStream(Self.config(2_000)))
        let b = Array(TransactionStream(Self.config(2_000)))
        let c = Array(TransactionStream(Self.config(2_000, seed: 4)))
        #expect(a == b)
        #expect(a != c)
        #expect(a.count == 2_000)
    }

    @Test func timesNeverGoBackAndIdsAreUnique() {
        let events = Array(TransactionStream(Self.config()))
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.time <= $1.time })
        #expect(Set(events.map(\.id)).count == events.count)
    }

    /// Every pattern occurs, fraud is rare, and each pattern looks like what it claims to be.
    @Test func fraudPatternsAreRareAndRecognisable() {
        let events = Array(TransactionStream(Self.config()))
        let fraud = events.filter(\.isFraud)
        let share = Double(fraud.count) / Double(events.count)
        #expect(share > 0.003 && share < 0.05, "fraud share \(share)")
        for pattern in TransactionStream.Pattern.allCases where pattern != .normal {
            // Compromised merchants, device rings and category campaigns only come with their rates.
            let optIn: Set<TransactionStream.Pattern> = [.compromisedMerchant, .deviceRing, .categoryCampaign]
            #expect(fraud.contains { $0.pattern == pattern } == !optIn.contains(pattern), "\(pattern)")
        }
        #expect(
            fraud.filter { $0.pattern == .cardTesting && $0.amount <= 3 }.count > fraud.filter {
                $0.pattern == .cardTesting
            }.count / 2)
        let normalMedian = events.filter { !$0.isFraud }.map(\.amount).sorted()[events.count / 2]
        let spikes = fraud.filter { $0.pattern == .amountSpike }.map(\.amount).sorted()
        #expect(spikes[spikes.count / 2] > 5 * normalMedian)
        #expect(fraud.filter { $0.pattern == .takeover }.allSatisfy { $0.channel == "online" })
    }

    /// With a merchant fraud rate, bursts of many cards hit one merchant within minutes;
    /// the rest of the stream's patterns still occur.
    @Test func compromisedMerchantsTakeManyCardsWithinMinutes() {
        var config = Self.config()
        config.merchantFraudRate = 0.0005
        let events = Array(TransactionStream(config))
        let bursts = Dictionary(grouping: events.filter { $0.pattern == .compromisedMerchant }, by: \.merchantId)
        #expect(bursts.count >= 5, "\(bursts.count) bursts")
        let end = events.last!.time
        for (merchant, burst) in bursts {
            let times = burst.map(\.time)
            #expect(times.max()! - times.min()! <= 40 * 6_000, "\(merchant) within four minutes")
            guard times.min()! < end - 40 * 6_000 else { continue }  // cut short by the end
            #expect(burst.count >= 15 && Set(burst.map(\.card)).count >= burst.count / 2, "\(merchant)")
        }
        #expect(events.contains { $0.pattern == .takeover } && events.contains { $0.pattern == .cardTesting })
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.time <= $1.time })
    }

    /// With a category campaign rate, hundreds of cards pay once each at merchants of one category
    /// over minutes: no card and almost no merchant sees more than a payment or two of it.
    @Test func categoryCampaignsSpreadOverManyCardsAndMerchantsOfOneCategory() {
        var config = Self.config()
        config.categoryCampaignRate = 0.0001
        let events = Array(TransactionStream(config))
        let campaign = events.filter { $0.pattern == .categoryCampaign }
        #expect(campaign.count >= 200, "\(campaign.count) campaign payments")
        #expect(campaign.allSatisfy { $0.channel == "online" })
        // Campaigns are told apart by time: a gap of over 1.2 s starts another one. Those that
        // overlap merge here, so only the lower bounds are checked.
        var runs: [[TransactionStream.Transaction]] = []
        for t in campaign {
            if let last = runs.last?.last, t.time - last.time <= 1_200, t.merchantCategory == last.merchantCategory {
                runs[runs.count - 1].append(t)
            } else {
                runs.append([t])
            }
        }
        let long = runs.filter { $0.count >= 200 }
        #expect(!long.isEmpty)
        for run in long {
            #expect(Set(run.map(\.merchantCategory)).count == 1)
            #expect(run.last!.time - run.first!.time >= 60_000, "over a minute at least")
            #expect(Set(run.map(\.card)).count >= run.count * 4 / 5, "most cards once")
            #expect(Set(run.map(\.merchantId)).count >= run.count * 3 / 4, "most merchants once")
        }
        // Without the rate, none.
        #expect(!TransactionStream(Self.config(5000)).contains { $0.pattern == .categoryCampaign })
    }

    /// With a device ring rate, every payment carries a device: the card's own, or a ring's,
    /// which a dozen cards share within minutes; without it, no payment has one.
    @Test func deviceRingsShareOneDeviceAmongManyCards() {
        #expect(TransactionStream(Self.config(5000)).allSatisfy { $0.deviceId == nil })
        var config = Self.config()
        config.deviceRingRate = 0.0005
        let events = Array(TransactionStream(config))
        #expect(events.allSatisfy { $0.deviceId != nil })
        #expect(events.filter { $0.pattern != .deviceRing }.allSatisfy { $0.deviceId == "dev-" + $0.card.dropFirst(5) })
        let rings = Dictionary(grouping: events.filter { $0.pattern == .deviceRing }, by: { $0.deviceId! })
        #expect(rings.count >= 5, "\(rings.count) rings")
        let end = events.last!.time
        for (device, ring) in rings {
            let times = ring.map(\.time)
            #expect(times.max()! - times.min()! <= 40 * 10_000, "\(device) within minutes")
            guard times.min()! < end - 40 * 10_000 else { continue }  // cut short by the end
            #expect(Set(ring.map(\.card)).count >= 8, "\(device): \(Set(ring.map(\.card)).count) cards")
        }
        let line = String(decoding: SyntheticEvents.json(events[0]), as: UTF8.self)
        #expect(line.contains(#""device_id":"#) && line.hasSuffix("\"}"))
    }

    /// After the drift point, normal amounts are higher and more payments are online.
    @Test func normalBehaviourDriftsHalfway() {
        let events = Array(TransactionStream(Self.config())).filter { !$0.isFraud }
        let half = events.count / 2
        func mean(_ xs: ArraySlice<TransactionStream.Transaction>) -> Double {
            xs.map(\.amount).reduce(0, +) / Double(xs.count)
        }
        func online(_ xs: ArraySlice<TransactionStream.Transaction>) -> Double {
            Double(xs.filter { $0.channel == "online" }.count) / Double(xs.count)
        }
        #expect(mean(events[half...]) > 1.3 * mean(events[..<half]))
        #expect(online(events[half...]) > online(events[..<half]) + 0.1)
    }

    /// One label per transaction, available after it within the configured delay, handed out
    /// in the order they become available.
    @Test func labelsArriveLateButAllArrive() {
        var stream = TransactionStream(Self.config(20_000))
        var events: [String: TransactionStream.Transaction] = [:]
        var labels: [TransactionStream.Label] = []
        while let t = stream.next() {
            events[t.id] = t
            labels += stream.labels(availableBy: t.time)
        }
        #expect(labels.count < events.count)  // some were still pending when the stream ended
        labels += stream.remainingLabels()
        #expect(labels.count == events.count)
        #expect(Set(labels.map(\.id)) == Set(events.keys))
        #expect(zip(labels, labels.dropFirst()).allSatisfy { $0.availableAt <= $1.availableAt })
        for label in labels {
            let t = events[label.id]!
            #expect(label.isFraud == t.isFraud)
            #expect(stream.config.labelDelayMs.contains(label.availableAt - t.time))
        }
    }
}
