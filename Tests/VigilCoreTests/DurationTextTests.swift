import Testing
import VigilCore
import VigilTestKit

@Suite(.ownThread) struct DurationTextTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("10m", .seconds(600)),
        ("1h", .seconds(3600)), ("1d", .seconds(86_400)), ("2w", .seconds(1_209_600)), ("0s", .zero),
    ])
    func parsesWholeNumbersWithAUnit(text: String, expected: Duration) {
        #expect(DurationText.parse(text) == expected)
    }

    @Test(arguments: ["", "10", "m", "10 m", "10min", "-5s", "1.5h", "ten minutes", "5S", "99999999999999999999d"])
    func rejectsEverythingElse(text: String) {
        #expect(DurationText.parse(text) == nil)
    }

    @Test(arguments: ["500ms", "30s", "90s", "10m", "1h", "1d", "1w", "36h"])
    func formatRoundTrips(text: String) throws {
        let d = try #require(DurationText.parse(text))
        #expect(DurationText.format(d) == text)
        #expect(DurationText.format(.seconds(3600)) == "1h")
    }
}

@Suite(.ownThread) struct SuggestionsTests {
    @Test func editDistanceCountsInsertionsDeletionsSubstitutionsAndTranspositions() {
        #expect(Suggestions.editDistance("", "abc") == 3)
        #expect(Suggestions.editDistance("amount", "amount") == 0)
        #expect(Suggestions.editDistance("amout", "amount") == 1)
        #expect(Suggestions.editDistance("amuont", "amount") == 1)
        #expect(Suggestions.editDistance("kitten", "sitting") == 3)
    }

    @Test func suggestsOnlyCloseCandidates() {
        #expect(
            Suggestions.closest(to: "isolation_forrest", in: ["isolation_forest", "logistic_regression"])
                == "isolation_forest")
        #expect(Suggestions.closest(to: "tme", in: ["time", "key", "id"]) == "time")
        #expect(Suggestions.closest(to: "zebra", in: ["time", "key", "id"]) == nil)
        #expect(Suggestions.hint(for: "zebra", in: ["a", "b"]) == "; expected one of: a, b")
    }

    /// A key far longer than every candidate cannot be a typo of one; it is refused without an
    /// edit distance per candidate (the topology fuzz target's slow input).
    @Test func aLongKeyGetsTheListWithoutAnEditDistance() {
        let long = String(repeating: "window\u{FFFD}", count: 2_000)
        #expect(Suggestions.closest(to: long, in: ["window", "agg", "of"]) == nil)
        #expect(Suggestions.hint(for: long, in: ["window", "agg"]) == "; expected one of: window, agg")
        // A prefix still counts, as before.
        #expect(Suggestions.closest(to: "win", in: ["window", "agg"]) == "window")
    }
}
