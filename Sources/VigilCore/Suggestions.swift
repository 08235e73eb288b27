/// "Did you mean …?" hints for misspelled keys, kinds and names.
public enum Suggestions {
    /// The candidate closest to `word` by edit distance, if it is close enough to be a likely typo.
    public static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        let lowered = word.lowercased()
        // An edit distance is at least the difference in length. When no candidate is near
        // enough in length to pass the limit below, none can be returned, so nothing is computed:
        // a long misspelt key once cost length × candidates work for each hint (a 3.5 KB topology
        // took a second; the topology fuzz target found it).
        let scalars = lowered.unicodeScalars.count
        let characters = word.count
        let reachable = candidates.contains { candidate in
            let lengthGap = abs(scalars - candidate.lowercased().unicodeScalars.count)
            return lengthGap <= max(1, min(characters, candidate.count) / 3)
                || (lowered.count >= 3 && candidate.lowercased().hasPrefix(lowered))
        }
        guard reachable else { return nil }
        var best: (String, Int)?
        for candidate in candidates {
            // A truncated word (`log` for `log1p`) is a likely slip whatever the distance.
            if lowered.count >= 3, candidate.lowercased().hasPrefix(lowered) { return candidate }
            let d = editDistance(lowered, candidate.lowercased())
            if d < (best?.1 ?? .max) { best = (candidate, d) }
        }
        guard let (candidate, distance) = best else { return nil }
        // About one edit per three letters of the shorter word, and never a complete rewrite.
        let limit = max(1, min(word.count, candidate.count) / 3)
        return distance <= limit && distance < candidate.count ? candidate : nil
    }

    /// `; did you mean 'x'?` when one candidate is close, else `; expected one of: a, b, c`.
    public static func hint(for word: String, in candidates: [String], noun: String = "one of") -> String {
        if let match = closest(to: word, in: candidates) { return "; did you mean '\(match)'?" }
        if candidates.isEmpty { return "" }
        return "; expected \(noun): \(candidates.joined(separator: ", "))"
    }

    /// Levenshtein distance, with a transposition counted as one edit (optimal string alignment).
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let s = Array(a.unicodeScalars)
        let t = Array(b.unicodeScalars)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        var previous2 = [Int](repeating: 0, count: t.count + 1)
        var previous = Array(0...t.count)
        var current = [Int](repeating: 0, count: t.count + 1)
        for i in 1...s.count {
            current[0] = i
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] {
                    current[j] = min(current[j], previous2[j - 2] + 1)
                }
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[t.count]
    }
}
