import VigilCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Writing one entity's row: an accepted event goes into the unfolded events, and the oldest of
// those are folded into the aggregates (see FeatureExtractor+State.swift for the row's layout).

extension FeatureExtractor {
    /// Adds an accepted event to its entity: into the unfolded events, then folds the oldest while
    /// there are more than `reorderBuffer` of them or the oldest is beyond the allowed lateness.
    func insert(_ row: UnsafeMutableRawPointer, _ event: Event) {
        let t = event.time
        let previous = row.load(fromByteOffset: Layout.newest, as: Int64.self)
        let newest = max(previous, t)
        // The factor from `previous` to `t` is usually the one `evaluate` just computed.
        let reuse = decayFactorsAt == (previous, t)
        for (g, group) in decays.enumerated() {
            // Re-reference the sums to the new newest time, then add the event at its own age.
            let shift =
                previous == newest
                ? 1 : (reuse ? decayFactors[g] : exp2(Double(previous &- newest) * group.inverseHalflife))
            let w = t == newest ? 1 : exp2(Double(t &- newest) * group.inverseHalflife)
            let weight = row.load(fromByteOffset: group.offset, as: Double.self)
            if let column = group.operand {
                var sum = row.load(fromByteOffset: group.offset + 8, as: Double.self) * shift
                var squares = row.load(fromByteOffset: group.offset + 16, as: Double.self) * shift
                let x = event.numbers[column]
                var total = weight * shift
                if !x.isNaN {
                    total += w
                    sum += w * x
                    squares += w * x * x
                }
                row.storeBytes(of: total, toByteOffset: group.offset, as: Double.self)
                row.storeBytes(of: sum, toByteOffset: group.offset + 8, as: Double.self)
                row.storeBytes(of: squares, toByteOffset: group.offset + 16, as: Double.self)
            } else {
                row.storeBytes(of: weight * shift + w, toByteOffset: group.offset, as: Double.self)
            }
        }
        row.storeBytes(of: newest, toByteOffset: Layout.newest, as: Int64.self)
        var n = Int(row.load(fromByteOffset: Layout.tailCount, as: UInt32.self))
        let capacity = reorderBuffer
        let stride = tailStride
        do {
            let entry = entryScratch
            writeEntry(event, to: entry)
            if n == capacity && (capacity == 0 || t < tailEntry(row, 0).load(as: Int64.self)) {
                fold(row, entry)  // the new event is the oldest: it goes straight to the aggregates
            } else {
                if n == capacity {
                    fold(row, tailEntry(row, 0))
                    removeFirstEntry(row, &n)
                }
                var position = n
                while position > 0, tailEntry(row, position - 1).load(as: Int64.self) > t { position -= 1 }
                if position < n {
                    Self.moveWords(
                        to: row + tailOffset + (position + 1) * stride, from: tailEntry(row, position),
                        bytes: (n - position) * stride)
                }
                Self.moveWords(to: tailEntry(row, position), from: entry, bytes: stride)
                n += 1
            }
        }
        while n > 0, tailEntry(row, 0).load(as: Int64.self) < newest - allowedLatenessMs {
            fold(row, tailEntry(row, 0))
            removeFirstEntry(row, &n)
        }
        row.storeBytes(of: UInt32(n), toByteOffset: Layout.tailCount, as: UInt32.self)
    }

    /// Moves a few 8-byte words between possibly overlapping places (the unfolded events are a
    /// handful of short entries: an inline loop beats a memmove call).
    @inline(__always)
    static func moveWords(to dst: UnsafeMutableRawPointer, from src: UnsafeRawPointer, bytes: Int) {
        let words = bytes / 8
        if UnsafeRawPointer(dst) < src {
            for w in 0..<words {
                dst.storeBytes(
                    of: src.load(fromByteOffset: 8 * w, as: UInt64.self), toByteOffset: 8 * w, as: UInt64.self)
            }
        } else {
            var w = words
            while w > 0 {
                w -= 1
                dst.storeBytes(
                    of: src.load(fromByteOffset: 8 * w, as: UInt64.self), toByteOffset: 8 * w, as: UInt64.self)
            }
        }
    }

    private func removeFirstEntry(_ row: UnsafeMutableRawPointer, _ n: inout Int) {
        let stride = tailStride
        if n > 1 { Self.moveWords(to: tailEntry(row, 0), from: tailEntry(row, 1), bytes: (n - 1) * stride) }
        n -= 1
    }

    /// Moves one event (the oldest not yet folded) into the aggregates.
    func fold(_ row: UnsafeMutableRawPointer, _ e: UnsafeRawPointer) {
        let tf = e.load(as: Int64.self)
        let old = row.load(fromByteOffset: Layout.folded, as: Int64.self)
        let b = panes
        for group in windows {
            let pf = Self.pane(tf, group.paneMs, group.paneInverse)
            // Panes that fell out of every future window are emptied (all of them on the first fold).
            let head = old == .min ? pf - Int64(b) : Self.pane(old, group.paneMs, group.paneInverse)
            if pf > head {
                let clear = Int(min(pf - head, Int64(b)))
                var s = Self.slot(pf - Int64(clear) + 1, b)
                for _ in 0..<clear {
                    row.storeBytes(of: 0, toByteOffset: group.counts &+ 4 &* s, as: UInt32.self)
                    if group.sums >= 0 { row.storeBytes(of: 0, toByteOffset: group.sums &+ 8 &* s, as: Double.self) }
                    if group.squares >= 0 {
                        row.storeBytes(of: 0, toByteOffset: group.squares &+ 8 &* s, as: Double.self)
                    }
                    if group.mins >= 0 {
                        row.storeBytes(of: Double.infinity, toByteOffset: group.mins &+ 8 &* s, as: Double.self)
                    }
                    if group.maxs >= 0 {
                        row.storeBytes(of: -Double.infinity, toByteOffset: group.maxs &+ 8 &* s, as: Double.self)
                    }
                    s = (s &+ 1) & (b &- 1)
                }
            }
            let s = Self.slot(pf, b)
            let c = row.load(fromByteOffset: group.counts &+ 4 &* s, as: UInt32.self)
            if let j = group.tailOperand {
                let x = entryNumber(e, j)
                if x.isNaN { continue }
                if group.sums >= 0 {
                    row.storeBytes(
                        of: row.load(fromByteOffset: group.sums &+ 8 &* s, as: Double.self) + x,
                        toByteOffset: group.sums &+ 8 &* s, as: Double.self)
                }
                if group.squares >= 0 {
                    row.storeBytes(
                        of: row.load(fromByteOffset: group.squares &+ 8 &* s, as: Double.self) + x * x,
                        toByteOffset: group.squares &+ 8 &* s, as: Double.self)
                }
                if group.mins >= 0 {
                    let m = row.load(fromByteOffset: group.mins &+ 8 &* s, as: Double.self)
                    row.storeBytes(of: min(m, x), toByteOffset: group.mins &+ 8 &* s, as: Double.self)
                }
                if group.maxs >= 0 {
                    let m = row.load(fromByteOffset: group.maxs &+ 8 &* s, as: Double.self)
                    row.storeBytes(of: max(m, x), toByteOffset: group.maxs &+ 8 &* s, as: Double.self)
                }
            }
            row.storeBytes(of: c &+ 1, toByteOffset: group.counts &+ 4 &* s, as: UInt32.self)
        }
        for d in distincts {
            let h = entryCategory(e, d.tailField)
            if h == 0 { continue }
            let pf = UInt32(truncatingIfNeeded: Self.pane(tf, d.paneMs, d.paneInverse))
            var target = -1
            var oldestAge: UInt32 = 0
            for k in 0..<FeaturePlan.valuesRemembered {
                let kh = row.load(fromByteOffset: d.offset + 8 * k, as: UInt32.self)
                if kh == h {
                    target = k
                    break
                }
                let age: UInt32 = kh == 0 ? .max : pf &- row.load(fromByteOffset: d.offset + 8 * k + 4, as: UInt32.self)
                if target < 0 || age > oldestAge {
                    target = k
                    oldestAge = age
                }
            }
            row.storeBytes(of: h, toByteOffset: d.offset + 8 * target, as: UInt32.self)
            row.storeBytes(of: pf, toByteOffset: d.offset + 8 * target + 4, as: UInt32.self)
        }
        for s in novelties {
            let h = entryCategory(e, s.tailField)
            if h == 0 { continue }
            var k = 0
            while k < FeaturePlan.valuesRemembered - 1, row.load(fromByteOffset: s.offset + 4 * k, as: UInt32.self) != h
            {
                k += 1
            }
            // Shift [0, k) one place back (dropping slot k: the match, or the least recent) and
            // put h first.
            var i = k
            while i > 0 {  // a few words: cheaper inline than a memmove call
                row.storeBytes(
                    of: row.load(fromByteOffset: s.offset + 4 * (i - 1), as: UInt32.self),
                    toByteOffset: s.offset + 4 * i, as: UInt32.self)
                i -= 1
            }
            row.storeBytes(of: h, toByteOffset: s.offset, as: UInt32.self)
        }
        for s in shares { foldShare(row, s, e, at: tf, after: old) }
        row.storeBytes(of: tf, toByteOffset: Layout.folded, as: Int64.self)
    }

    /// Re-references a share's weights from the previous folded time `old` to `tf`, then adds the
    /// folded event's value (replacing the lightest remembered value when it is new).
    private func foldShare(
        _ row: UnsafeMutableRawPointer, _ s: FeaturePlan.ShareState, _ e: UnsafeRawPointer, at tf: Int64,
        after old: Int64
    ) {
        let n = FeaturePlan.valuesRemembered
        let shift = old == .min ? 0 : exp2(Double(old &- tf) * s.inverseHalflife)
        let h = entryCategory(e, s.tailField)
        // The slot holding h, else the lightest (an empty slot weighs 0).
        var target = 0
        var lightest = Double.infinity
        for k in 0..<n {
            let w = row.load(fromByteOffset: s.weights + 8 * k, as: Double.self) * shift
            row.storeBytes(of: w, toByteOffset: s.weights + 8 * k, as: Double.self)
            guard lightest >= 0 else { continue }  // h already found
            if h != 0, row.load(fromByteOffset: s.hashes + 4 * k, as: UInt32.self) == h {
                target = k
                lightest = -1
            } else if w < lightest {
                target = k
                lightest = w
            }
        }
        var total = row.load(fromByteOffset: s.weights + 8 * n, as: Double.self) * shift
        if h != 0 {
            total += 1
            if row.load(fromByteOffset: s.hashes + 4 * target, as: UInt32.self) != h {
                row.storeBytes(of: h, toByteOffset: s.hashes + 4 * target, as: UInt32.self)
                row.storeBytes(of: 0.0, toByteOffset: s.weights + 8 * target, as: Double.self)
            }
            row.storeBytes(
                of: row.load(fromByteOffset: s.weights + 8 * target, as: Double.self) + 1,
                toByteOffset: s.weights + 8 * target, as: Double.self)
        }
        row.storeBytes(of: total, toByteOffset: s.weights + 8 * n, as: Double.self)
    }
}
