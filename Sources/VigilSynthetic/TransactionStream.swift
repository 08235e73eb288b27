import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A seeded synthetic card-payment stream with labelled fraud: what tests, benchmarks and the
/// demo feed Vigil when no real stream is at hand. The same seed gives the same events on every
/// machine. Its fields are those of `topologies/card-payments.yaml`.
///
/// - Cards have a home country, a few usual merchants and a typical amount (log-normal).
/// - Fraud comes in episodes of four patterns:
///   - *card testing*: a burst of small amounts at unknown online merchants;
///   - *amount spike*: one purchase many times the card's usual amount;
///   - *new country*: purchases abroad at unknown merchants;
///   - *account takeover*: many purchases in minutes, online, across merchants;
///   - *compromised merchant* (only with `merchantFraudRate` > 0): one merchant suddenly takes
///     payments from dozens of cards within minutes, each card's payment on its own only a
///     little unusual. Features of the card barely see it; features of the merchant do;
///   - *device ring* (only with `deviceRingRate` > 0): a ring of 8 to 20 cards pays online from
///     one shared device within minutes, each card once or twice. Every payment then carries a
///     device id: each card's own, or the ring's;
///   - *category campaign* (only with `categoryCampaignRate` > 0): for minutes, hundreds of cards
///     each pay once online at a random merchant of one merchant category, at up to twice their
///     usual amount. No card and no merchant sees more than a payment or two of it; the
///     category's volume rises by about a sixth, which only features of the category can see.
/// - At `driftAt` of the stream the normal behaviour shifts: amounts rise by half, more payments
///   are online and abroad. The fraud patterns stay the same.
/// - Every transaction gets a label that becomes available after a random delay (chargebacks
///   and reviews take time); `labels(availableBy:)` hands them out in time order.
public struct TransactionStream: Sequence, IteratorProtocol, Sendable {
    /// Shape of the stream.
    public struct Config: Sendable, Hashable {
        public var seed: UInt64 = 1
        public var cards = 10_000
        /// Transactions produced, fraud included.
        public var events = 100_000
        /// Mean gap between transactions, stream-wide.
        public var meanGapMs: Double = 10
        /// Share of transactions that start a fraud episode.
        public var fraudEpisodeRate = 0.001
        /// Share of transactions that start a compromised-merchant burst (0: none, and the stream
        /// is the same as before this pattern existed).
        public var merchantFraudRate = 0.0
        /// Share of transactions that start a device ring; above 0, every transaction carries a
        /// device id (0: none, and the stream is the same as before devices existed).
        public var deviceRingRate = 0.0
        /// Share of transactions that start a campaign in one merchant category (0: none, and the
        /// stream is the same as before this pattern existed).
        public var categoryCampaignRate = 0.0
        /// Fraction of the stream after which normal behaviour drifts (nil: never).
        public var driftAt: Double? = 0.5
        /// Label delay, uniform in this range.
        public var labelDelayMs: ClosedRange<Int64> = 300_000...7_200_000
        /// Time of the first transaction (ms since the epoch).
        public var startMs: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z

        public init() {}
    }

    /// Kinds of fraud, and `normal`.
    public enum Pattern: String, Sendable, CaseIterable {
        case normal
        case cardTesting = "card_testing"
        case amountSpike = "amount_spike"
        case newCountry = "new_country"
        case takeover = "account_takeover"
        case compromisedMerchant = "compromised_merchant"
        case deviceRing = "device_ring"
        case categoryCampaign = "category_campaign"
    }

    /// One card payment.
    public struct Transaction: Sendable, Hashable {
        public var id: String
        public var card: String
        /// Event time, ms since the epoch.
        public var time: Int64
        public var amount: Double
        public var merchantId: String
        public var merchantCategory: String
        public var country: String
        public var channel: String
        public var isFraud: Bool { pattern != .normal }
        public var pattern: Pattern
        /// The device paid from: the card's own (`dev-<card number>`) or a ring's; nil when the
        /// stream has no devices.
        public var deviceId: String? = nil
    }

    /// The ground truth for one transaction, available from `availableAt`.
    public struct Label: Sendable, Hashable {
        public var id: String
        public var isFraud: Bool
        public var availableAt: Int64
    }

    public let config: Config
    private var random: SeededRandom
    private var cardProfiles: [CardProfile]
    private var clock: Int64
    private var produced = 0
    private var serial = 0
    /// Fraud events scheduled ahead, by time.
    private var scheduled = MinHeap<Scheduled>()
    private var pendingLabels = MinHeap<PendingLabel>()

    static let countries = (0..<30).map { "C\($0)" }
    static let categories = [
        "grocery", "fuel", "restaurant", "travel", "electronics", "fashion", "digital", "pharmacy",
        "entertainment", "utilities", "jewelry", "gift_cards",
    ]
    static let merchants = 20_000

    struct CardProfile: Sendable {
        var home: Int
        var merchants: [Int]
        var logMean: Double
    }

    struct Scheduled: Comparable, Sendable {
        var time: Int64
        var order: Int
        var transaction: Transaction
        static func < (a: Scheduled, b: Scheduled) -> Bool { (a.time, a.order) < (b.time, b.order) }
    }

    struct PendingLabel: Comparable, Sendable {
        var label: Label
        var order: Int
        static func < (a: PendingLabel, b: PendingLabel) -> Bool {
            (a.label.availableAt, a.order) < (b.label.availableAt, b.order)
        }
    }

    public init(_ config: Config = Config()) {
        precondition(config.cards >= 1 && config.events >= 0)
        self.config = config
        var rng = SeededRandom(seed: config.seed)
        clock = config.startMs
        var profiles: [CardProfile] = []
        profiles.reserveCapacity(config.cards)
        for _ in 0..<config.cards {
            // A few big countries hold most cards.
            let home = Swift.min(Self.countries.count - 1, Int(rng.exponential(mean: 4)))
            var merchants: [Int] = []
            for _ in 0..<(3 + rng.below(5)) { merchants.append(rng.below(Self.merchants)) }
            profiles.append(CardProfile(home: home, merchants: merchants, logMean: 3.4 + 0.6 * rng.gaussian()))
        }
        random = rng
        cardProfiles = profiles
    }

    /// Whether normal behaviour has drifted by now.
    public var drifted: Bool {
        guard let at = config.driftAt else { return false }
        return Double(produced) >= at * Double(config.events)
    }

    public mutating func next() -> Transaction? {
        guard produced < config.events else { return nil }
        let gap = Int64(random.exponential(mean: config.meanGapMs).rounded())
        let normalTime = clock + gap
        var transaction: Transaction
        if let due = scheduled.peek(), due.time <= normalTime {
            transaction = scheduled.pop()!.transaction
            clock = Swift.max(clock, due.time)
        } else {
            clock = normalTime
            // The rate is checked first, so that without it no random number is drawn.
            if config.deviceRingRate > 0, random.chance(config.deviceRingRate) {
                transaction = startDeviceRing()
            } else if config.merchantFraudRate > 0, random.chance(config.merchantFraudRate) {
                transaction = startMerchantBurst()
            } else if config.categoryCampaignRate > 0, random.chance(config.categoryCampaignRate) {
                transaction = startCategoryCampaign()
            } else {
                transaction = random.chance(config.fraudEpisodeRate) ? startEpisode() : normal(at: clock)
            }
        }
        produced += 1
        if config.deviceRingRate > 0, transaction.deviceId == nil {
            transaction.deviceId = "dev-" + transaction.card.dropFirst("card-".count)
        }
        let delay =
            config.labelDelayMs.lowerBound
            + Int64(random.below(Int(config.labelDelayMs.upperBound - config.labelDelayMs.lowerBound + 1)))
        pendingLabels.push(
            PendingLabel(
                label: Label(id: transaction.id, isFraud: transaction.isFraud, availableAt: transaction.time + delay),
                order: produced))
        return transaction
    }

    /// Labels that have become available by `time`, in the order they became available.
    public mutating func labels(availableBy time: Int64) -> [Label] {
        var out: [Label] = []
        while let first = pendingLabels.peek(), first.label.availableAt <= time {
            out.append(pendingLabels.pop()!.label)
        }
        return out
    }

    /// Every label not handed out yet (at the end of the stream).
    public mutating func remainingLabels() -> [Label] { labels(availableBy: .max) }

    // MARK: Generation

    private mutating func nextID() -> String {
        serial += 1
        return "t\(config.seed)-\(serial)"
    }

    private mutating func category(of merchant: Int) -> String {
        Self.categories[Int(StableHash.hash("m\(merchant)") % UInt64(Self.categories.count))]
    }

    private mutating func normal(at time: Int64) -> Transaction {
        let c = random.below(config.cards)
        let profile = cardProfiles[c]
        let drift = drifted
        let logMean = profile.logMean + (drift ? 0.4 : 0)
        let amount = (exp(logMean + 0.6 * random.gaussian()) * 100).rounded() / 100
        let merchant =
            random.chance(0.8) ? profile.merchants[random.below(profile.merchants.count)] : random.below(Self.merchants)
        let abroad = random.chance(drift ? 0.10 : 0.03)
        let country = abroad ? random.below(Self.countries.count) : profile.home
        let online = random.chance(drift ? 0.5 : 0.3)
        return Transaction(
            id: nextID(), card: "card-\(c)", time: time, amount: amount, merchantId: "m\(merchant)",
            merchantCategory: category(of: merchant), country: Self.countries[country],
            channel: online ? "online" : (random.chance(0.1) ? "atm" : "pos"), pattern: .normal)
    }

    /// Starts a fraud episode on a random card: returns its first transaction and schedules the
    /// rest.
    private mutating func startEpisode() -> Transaction {
        let c = random.below(config.cards)
        let profile = cardProfiles[c]
        let pattern = [Pattern.cardTesting, .amountSpike, .newCountry, .takeover][random.below(4)]
        var events: [(offset: Int64, amount: Double, merchant: Int, country: Int, channel: String)] = []
        let foreign = (profile.home + 1 + random.below(Self.countries.count - 1)) % Self.countries.count
        func usual() -> Double { exp(profile.logMean + 0.6 * random.gaussian()) }
        switch pattern {
        case .cardTesting:
            var t: Int64 = 0
            for _ in 0..<(4 + random.below(7)) {
                events.append((t, 0.5 + 2.5 * random.unit(), random.below(Self.merchants), profile.home, "online"))
                t += Int64(5_000 + random.below(20_000))
            }
            if random.chance(0.5) {
                events.append((t + 60_000, usual() * 8, random.below(Self.merchants), profile.home, "online"))
            }
        case .amountSpike:
            events.append(
                (
                    0, usual() * (10 + 40 * random.unit()), random.below(Self.merchants), profile.home,
                    random.chance(0.5) ? "online" : "pos"
                ))
        case .newCountry:
            var t: Int64 = 0
            for _ in 0..<(1 + random.below(3)) {
                events.append((t, usual() * (2 + 3 * random.unit()), random.below(Self.merchants), foreign, "pos"))
                t += Int64(120_000 + random.below(600_000))
            }
        case .takeover:
            var t: Int64 = 0
            for _ in 0..<(5 + random.below(11)) {
                events.append(
                    (
                        t, usual() * (1 + 3 * random.unit()), random.below(Self.merchants),
                        random.chance(0.5) ? foreign : profile.home, "online"
                    ))
                t += Int64(20_000 + random.below(60_000))
            }
        case .normal, .compromisedMerchant, .deviceRing, .categoryCampaign:
            break
        }
        var first: Transaction?
        for e in events {
            let transaction = Transaction(
                id: nextID(), card: "card-\(c)", time: clock + e.offset, amount: (e.amount * 100).rounded() / 100,
                merchantId: "m\(e.merchant)", merchantCategory: category(of: e.merchant),
                country: Self.countries[e.country], channel: e.channel, pattern: pattern)
            emit(transaction, first: &first)
        }
        return first!
    }
}

extension TransactionStream {
    /// The first transaction of an episode is returned at once (`first`); the rest are scheduled.
    fileprivate mutating func emit(_ transaction: Transaction, first: inout Transaction?) {
        if first == nil {
            first = transaction
        } else {
            scheduled.push(Scheduled(time: transaction.time, order: serial, transaction: transaction))
        }
    }

    /// Starts a compromised-merchant burst: 15 to 40 payments at one merchant, 1 to 6 s apart,
    /// each from another card in its home country, at one to three times that card's usual
    /// amount. Returns the first and schedules the rest.
    fileprivate mutating func startMerchantBurst() -> Transaction {
        let merchant = random.below(Self.merchants)
        var offset: Int64 = 0
        var first: Transaction?
        for _ in 0..<(15 + random.below(26)) {
            let c = random.below(config.cards)
            let profile = cardProfiles[c]
            let amount = exp(profile.logMean + 0.6 * random.gaussian()) * (1 + 2 * random.unit())
            let transaction = Transaction(
                id: nextID(), card: "card-\(c)", time: clock + offset, amount: (amount * 100).rounded() / 100,
                merchantId: "m\(merchant)", merchantCategory: category(of: merchant),
                country: Self.countries[profile.home], channel: random.chance(0.7) ? "pos" : "online",
                pattern: .compromisedMerchant)
            emit(transaction, first: &first)
            offset += Int64(1_000 + random.below(5_000))
        }
        return first!
    }
}

extension TransactionStream {
    /// Starts a device ring: 8 to 20 cards pay online from one device, once or twice each, 2 to
    /// 10 s apart, at one to three times each card's usual amount at random merchants. Returns the
    /// first payment and schedules the rest.
    fileprivate mutating func startDeviceRing() -> Transaction {
        let device = "ring-\(serial)"
        var offset: Int64 = 0
        var first: Transaction?
        for _ in 0..<(8 + random.below(13)) {
            let c = random.below(config.cards)
            let profile = cardProfiles[c]
            for _ in 0..<(1 + random.below(2)) {
                let amount = exp(profile.logMean + 0.6 * random.gaussian()) * (1 + 2 * random.unit())
                let merchant = random.below(Self.merchants)
                var transaction = Transaction(
                    id: nextID(), card: "card-\(c)", time: clock + offset, amount: (amount * 100).rounded() / 100,
                    merchantId: "m\(merchant)", merchantCategory: category(of: merchant),
                    country: Self.countries[profile.home], channel: "online", pattern: .deviceRing)
                transaction.deviceId = device
                emit(transaction, first: &first)
                offset += Int64(2_000 + random.below(8_000))
            }
        }
        return first!
    }
}

extension TransactionStream {
    /// Starts a campaign in one merchant category: 200 to 400 payments, 0.3 to 1.2 s apart, each
    /// from another card in its home country, online, at one to two times the card's usual
    /// amount, at a random merchant of the category. Returns the first and schedules the rest.
    fileprivate mutating func startCategoryCampaign() -> Transaction {
        let category = Self.categories[random.below(Self.categories.count)]
        var offset: Int64 = 0
        var first: Transaction?
        for _ in 0..<(200 + random.below(201)) {
            let c = random.below(config.cards)
            let profile = cardProfiles[c]
            var merchant = random.below(Self.merchants)
            while self.category(of: merchant) != category { merchant = random.below(Self.merchants) }
            let amount = exp(profile.logMean + 0.6 * random.gaussian()) * (1 + random.unit())
            let transaction = Transaction(
                id: nextID(), card: "card-\(c)", time: clock + offset, amount: (amount * 100).rounded() / 100,
                merchantId: "m\(merchant)", merchantCategory: category, country: Self.countries[profile.home],
                channel: "online", pattern: .categoryCampaign)
            emit(transaction, first: &first)
            offset += Int64(300 + random.below(900))
        }
        return first!
    }
}

/// A binary min-heap: the stream's schedule of future fraud events and pending labels.
struct MinHeap<Element: Comparable & Sendable>: Sendable {
    private var items: [Element] = []

    func peek() -> Element? { items.first }

    mutating func push(_ x: Element) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i] < items[parent] else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var m = i
            if l < items.count, items[l] < items[m] { m = l }
            if r < items.count, items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return top
    }
}
