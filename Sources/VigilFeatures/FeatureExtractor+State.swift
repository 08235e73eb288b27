import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@inline(__always)
func naturalLog1p(_ x: Double) -> Double { log1p(x) }

// Evaluation (read-only) and folding (write) of one entity's row.
//
// A row holds the entity's *folded* events as aggregates (window panes, decayed moments, distinct
// and novelty memories) up to the time `folded`, plus up to `reorderBuffer` newer *unfolded*
// events kept raw and sorted by time. Features at time t combine the folded aggregates with the
// unfolded events at or before t, so an event that arrives late but within the allowed lateness
// sees exactly what it would have seen in order.

extension FeatureExtractor {
    typealias Layout = FeaturePlan.RowLayout

    /// floor(t / width), by a multiplication with the precomputed inverse and one correction
    /// step instead of a 64-bit division (which costs ~40 cycles, several times per event).
    @inline(__always)
    static func pane(_ t: Int64, _ width: Int64, _ inverse: Double) -> Int64 {
        // Truncation (one instruction, unlike floor on baseline x86-64) is off by at most one,
        // which the correction below repairs, negative times included.
        var q = Int64(Double(t) * inverse)
        if q &* width > t {
            q -= 1
        } else if (q + 1) &* width <= t {
            q += 1
        }
        return q
    }

    /// The ring slot of a pane; `panes` is a power of two.
    @inline(__always)
    static func slot(_ pane: Int64, _ panes: Int) -> Int { Int(truncatingIfNeeded: pane) & (panes - 1) }

    /// A categorical hash narrowed to the 32 bits kept in state; never 0 for a present value.
    @inline(__always)
    static func narrow(_ h: UInt64) -> UInt32 {
        if h == 0 { return 0 }
        let n = UInt32(truncatingIfNeeded: h ^ (h >> 32))
        return n == 0 ? 1 : n
    }

    // MARK: Unfolded events

    @inline(__always)
    func tailEntry(_ row: UnsafeMutableRawPointer, _ i: Int) -> UnsafeMutableRawPointer {
        row + tailOffset + i * tailStride
    }

    @inline(__always)
    func entryNumber(_ e: UnsafeRawPointer, _ j: Int) -> Double {
        e.load(fromByteOffset: 8 + 8 * j, as: Double.self)
    }

    @inline(__always)
    func entryCategory(_ e: UnsafeRawPointer, _ k: Int) -> UInt32 {
        e.load(fromByteOffset: 8 + 8 * tailNumbers.count + 4 * k, as: UInt32.self)
    }

    func writeEntry(_ event: Event, to e: UnsafeMutableRawPointer) {
        e.storeBytes(of: event.time, as: Int64.self)
        for (j, column) in tailNumbers.enumerated() {
            e.storeBytes(of: event.numbers[column], toByteOffset: 8 + 8 * j, as: Double.self)
        }
        let base = 8 + 8 * tailNumbers.count
        for (k, column) in tailCategories.enumerated() {
            e.storeBytes(of: Self.narrow(event.categories[column]), toByteOffset: base + 4 * k, as: UInt32.self)
        }
    }

    // MARK: Evaluate

    /// Writes the features of `event` evaluated at time `te` (its own time, or its entity's newest
    /// for a late event) into `out`, without changing the row.
    func evaluate(_ row: UnsafeMutableRawPointer, _ event: Event, at te: Int64, out: UnsafeMutableBufferPointer<Double>)
    {
        let folded = row.load(fromByteOffset: Layout.folded, as: Int64.self)
        let tailCount = Int(row.load(fromByteOffset: Layout.tailCount, as: UInt32.self))
        // Unfolded events at or before te (they are sorted by time).
        var visible = 0
        while visible < tailCount, tailEntry(row, visible).load(as: Int64.self) <= te { visible += 1 }
        let b = panes

        do {
            let scratch = windowScratch
            for (g, group) in windows.enumerated() {
                var agg = WindowSums()
                let pe = Self.pane(te, group.paneMs, group.paneInverse)
                let windowStart = (pe - Int64(b) + 1) * group.paneMs  // first instant of the window
                if folded != .min {
                    let head = Self.pane(folded, group.paneMs, group.paneInverse)
                    let lo = max(head - Int64(b) + 1, pe - Int64(b) + 1)
                    if lo <= head {
                        var s = Self.slot(lo, b)
                        // Branch-free: empty panes hold 0 counts and sums, +inf minima and
                        // -inf maxima, so adding them changes nothing.
                        var count: UInt32 = 0
                        for _ in lo...head {
                            count &+= row.load(fromByteOffset: group.counts &+ 4 &* s, as: UInt32.self)
                            if group.sums >= 0 {
                                agg.sum += row.load(fromByteOffset: group.sums &+ 8 &* s, as: Double.self)
                            }
                            if group.squares >= 0 {
                                agg.squares += row.load(fromByteOffset: group.squares &+ 8 &* s, as: Double.self)
                            }
                            if group.mins >= 0 {
                                agg.min = min(agg.min, row.load(fromByteOffset: group.mins &+ 8 &* s, as: Double.self))
                            }
                            if group.maxs >= 0 {
                                agg.max = max(agg.max, row.load(fromByteOffset: group.maxs &+ 8 &* s, as: Double.self))
                            }
                            s = (s &+ 1) & (b &- 1)
                        }
                        agg.count = Double(count)
                    }
                }
                for i in 0..<visible {
                    let e = tailEntry(row, i)
                    if e.load(as: Int64.self) < windowStart { continue }
                    if let j = group.tailOperand {
                        let x = entryNumber(e, j)
                        if !x.isNaN { agg.add(x) }
                    } else {
                        agg.count += 1
                    }
                }
                if let column = group.operand {
                    let x = event.numbers[column]
                    if !x.isNaN { agg.add(x) }
                } else {
                    agg.count += 1
                }
                scratch[g] = agg
            }
        }

        do {
            let scratch = decayScratch
            // Decayed sums are kept as of the entity's newest event and cover every accepted
            // event. At te ≥ newest they only decay; at an earlier te (a late event) they grow back
            // to te and the unfolded events after te are taken out again.
            let newest = row.load(fromByteOffset: Layout.newest, as: Int64.self)
            decayFactorsAt = (newest, te)
            for (g, group) in decays.enumerated() {
                let f = newest == te ? 1 : exp2(Double(newest &- te) * group.inverseHalflife)
                decayFactors[g] = f
                var a = DecaySums()
                a.weight = row.load(fromByteOffset: group.offset, as: Double.self) * f
                if group.operand != nil {
                    a.sum = row.load(fromByteOffset: group.offset + 8, as: Double.self) * f
                    a.squares = row.load(fromByteOffset: group.offset + 16, as: Double.self) * f
                }
                if te < newest {
                    for i in visible..<tailCount {
                        let e = tailEntry(row, i)
                        let w = exp2(Double(e.load(as: Int64.self) &- te) * group.inverseHalflife)
                        if let j = group.tailOperand {
                            let x = entryNumber(e, j)
                            if !x.isNaN { a.remove(x, weight: w) }
                        } else {
                            a.weight -= w
                        }
                    }
                }
                // What the subtraction leaves of removed events is rounding: snap it to zero.
                if a.weight < 1e-9 { a = DecaySums() }
                scratch[g] = a
            }
        }

        for (c, column) in columns.enumerated() {
            switch column {
            case .value(let field, let transform):
                out[c] = plan.transforms[transform].apply(event.numbers[field])
            case .window(let g, let aggregate):
                out[c] = windowScratch[g].value(aggregate)
            case .distinct(let i):
                out[c] = distinctCount(row, distincts[i], event, at: te, visible: visible)
            case .decayed(let g, let aggregate):
                let group = decays[g]
                var a = decayScratch[g]
                let x = group.operand.map { event.numbers[$0] } ?? .nan
                if group.operand == nil {
                    a.weight += 1
                } else if !x.isNaN {
                    a.add(x, weight: 1)
                }
                switch aggregate {
                case .count: out[c] = a.weight
                case .sum: out[c] = a.sum
                case .mean: out[c] = a.weight > 0 ? a.mean : .nan
                case .std: out[c] = a.weight > 0 ? a.variance.squareRoot() : .nan
                }
            case .zscore(let g):
                out[c] = Self.zscore(event.numbers[decays[g].operand!], decayScratch[g])
            case .timeSinceLast:
                var previous = folded
                if visible > 0 { previous = max(previous, tailEntry(row, visible - 1).load(as: Int64.self)) }
                out[c] = previous == .min ? .nan : Double(te &- previous) * 0.001
            case .novelty(let i):
                out[c] = isNovel(row, novelties[i], event, visible: visible) ? 1 : 0
            case .share(let i):
                out[c] = share(row, shares[i], event, at: te, folded: folded, visible: visible)
            case .ratio(let n, let d, let rn, let rd):
                let num = rn >= 0 ? event.numbers[rn] : out[n]
                let den = rd >= 0 ? event.numbers[rd] : out[d]
                out[c] = den == 0 || num.isNaN || den.isNaN ? .nan : num / den
            case .calendar(let part, let z):
                // The event's own time, also for a late event.
                let zone = plan.zones[z]
                out[c] = part.value(localMs: event.time &+ zone.offset(at: event.time))
            }
        }
    }

    /// How many decayed standard deviations `x` lies from the entity's decayed mean; 0 until the
    /// entity has at least two events' worth of history, clamped to ±100.
    static func zscore(_ x: Double, _ a: DecaySums) -> Double {
        if x.isNaN { return .nan }
        // "At least two events' worth", up to rounding: sums re-referenced to another time or
        // with newer events taken out land a few ulps either side of an exact 2.
        if a.weight < 2 - 1e-9 { return 0 }
        let mean = a.mean
        let std = a.variance.squareRoot()
        let tiny = 1e-6 * max(1, abs(mean))  // below this the spread is rounding noise
        let z: Double
        if std > tiny {
            z = (x - mean) / std
        } else {
            z = abs(x - mean) <= tiny ? 0 : (x > mean ? 100 : -100)
        }
        return min(100, max(-100, z))
    }

    private func distinctCount(
        _ row: UnsafeMutableRawPointer, _ d: FeaturePlan.DistinctState, _ event: Event, at te: Int64, visible: Int
    ) -> Double {
        let b = panes
        let pe = Self.pane(te, d.paneMs, d.paneInverse)
        let pe32 = UInt32(truncatingIfNeeded: pe)
        let windowStart = (pe - Int64(b) + 1) * d.paneMs
        let memory = row + d.offset
        @inline(__always) func inWindow(_ k: Int) -> Bool {
            let age = Int32(bitPattern: pe32 &- memory.load(fromByteOffset: 8 * k + 4, as: UInt32.self))
            return age >= 0 && age < b
        }
        @inline(__always) func remembered(_ h: UInt32) -> Bool {
            for k in 0..<FeaturePlan.valuesRemembered where memory.load(fromByteOffset: 8 * k, as: UInt32.self) == h {
                return inWindow(k)
            }
            return false
        }
        var n = 0
        for k in 0..<FeaturePlan.valuesRemembered
        where memory.load(fromByteOffset: 8 * k, as: UInt32.self) != 0 && inWindow(k) {
            n += 1
        }
        // Unfolded events in the window and the event itself: new unless remembered in the window
        // or already counted among them (at most reorderBuffer + 1 values).
        var counted: (UInt32, UInt32, UInt32, UInt32) = (0, 0, 0, 0)
        var extra = 0
        /// Counts `h`, the value of unfolded entry `before` (or of the event, `before` =
        /// `visible`), unless remembered or already counted.
        @inline(__always) func consider(_ h: UInt32, before: Int) {
            if h == 0 || remembered(h) { return }
            if counted.0 == h || counted.1 == h || counted.2 == h || counted.3 == h { return }
            if extra >= 4 {
                // More values than the fast path holds: compare with the earlier entries in the
                // window (only those: an entry is never a duplicate of itself or of later ones).
                for i in 0..<before {
                    let e = tailEntry(row, i)
                    if e.load(as: Int64.self) >= windowStart, entryCategory(e, d.tailField) == h { return }
                }
            }
            switch extra {
            case 0: counted.0 = h
            case 1: counted.1 = h
            case 2: counted.2 = h
            case 3: counted.3 = h
            default: break
            }
            extra += 1
            n += 1
        }
        for i in 0..<visible {
            let e = tailEntry(row, i)
            if e.load(as: Int64.self) < windowStart { continue }
            consider(entryCategory(e, d.tailField), before: i)
        }
        consider(Self.narrow(event.categories[d.field]), before: visible)
        return Double(n)
    }

    /// The decayed share, at `te`, of the entity's earlier events with a value of the field that
    /// had this event's value: the folded weights re-referenced to `te`, plus the visible
    /// unfolded events. NaN when the event has no value; 0 without earlier events.
    private func share(
        _ row: UnsafeMutableRawPointer, _ s: FeaturePlan.ShareState, _ event: Event, at te: Int64, folded: Int64,
        visible: Int
    ) -> Double {
        let h = Self.narrow(event.categories[s.field])
        if h == 0 { return .nan }
        var total = 0.0
        var mine = 0.0
        if folded != .min {
            let factor = exp2(Double(folded &- te) * s.inverseHalflife)
            total = row.load(fromByteOffset: s.weights + 8 * FeaturePlan.valuesRemembered, as: Double.self) * factor
            for k in 0..<FeaturePlan.valuesRemembered
            where row.load(fromByteOffset: s.hashes + 4 * k, as: UInt32.self) == h {
                mine = row.load(fromByteOffset: s.weights + 8 * k, as: Double.self) * factor
            }
        }
        for i in 0..<visible {
            let e = tailEntry(row, i)
            let v = entryCategory(e, s.tailField)
            if v == 0 { continue }
            let w = exp2(Double(e.load(as: Int64.self) &- te) * s.inverseHalflife)
            total += w
            if v == h { mine += w }
        }
        return total > 0 ? mine / total : 0
    }

    private func isNovel(_ row: UnsafeMutableRawPointer, _ s: FeaturePlan.NoveltyState, _ event: Event, visible: Int)
        -> Bool
    {
        let h = Self.narrow(event.categories[s.field])
        if h == 0 { return false }
        for k in 0..<FeaturePlan.valuesRemembered where row.load(fromByteOffset: s.offset + 4 * k, as: UInt32.self) == h
        {
            return false
        }
        for i in 0..<visible where entryCategory(tailEntry(row, i), s.tailField) == h { return false }
        return true
    }
}

extension WindowSums {
    @inline(__always)
    func value(_ aggregate: WindowAggregate) -> Double {
        switch aggregate {
        case .count: return count
        case .sum: return sum
        case .mean: return count > 0 ? sum / count : .nan
        case .variance, .std:
            guard count > 0 else { return .nan }
            let mean = sum / count
            let variance = Swift.max(0, squares / count - mean * mean)
            return aggregate == .variance ? variance : variance.squareRoot()
        case .min: return count > 0 ? min : .nan
        case .max: return count > 0 ? max : .nan
        case .distinct: return .nan  // computed from the distinct memory, never from panes
        }
    }
}

extension ValueTransform {
    /// Clip, then sign-preserving log1p, then bucket index.
    @inline(__always)
    public func apply(_ value: Double) -> Double {
        if value.isNaN { return value }
        var x = value
        if let clip { x = Swift.min(clip.upperBound, Swift.max(clip.lowerBound, x)) }
        if log1p { x = x < 0 ? -naturalLog1p(-x) : naturalLog1p(x) }
        if let edges = bucketEdges {
            var i = 0
            while i < edges.count, x >= edges[i] { i += 1 }
            x = Double(i)
        }
        return x
    }
}
