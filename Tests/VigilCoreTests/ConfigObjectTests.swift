import Testing
import VigilCore
import VigilTestKit

@Suite(.ownThread) struct ConfigObjectTests {
    enum Color: String, CaseIterable { case red, green, blue }

    func read(_ node: ConfigNode, _ body: (ConfigObject) -> Void) -> [String] {
        let d = ConfigDiagnostics()
        if let o = ConfigObject(node, at: ConfigPath.root.key("things").index(2), diagnostics: d) { body(o) }
        return d.issues.map(\.description)
    }

    @Test func readsTypedValuesWithDefaultsAndReportsNothing() {
        let issues = read([
            "n": 5, "rate": 0.5, "on": true, "every": .plain("10m"), "color": "green", "tags": ["a", "b"],
        ]) { o in
            #expect(o.int("n", in: 1...10) == 5)
            #expect(o.double("rate", in: .openUnit) == 0.5)
            #expect(o.bool("on") == true)
            #expect(o.duration("every", in: .seconds(1) ... .seconds(3600)) == .seconds(600))
            #expect(o.choice("color", as: Color.self) == .green)
            #expect(o.strings("tags") == ["a", "b"])
            #expect(o.int("absent", in: 0...1) == nil)
            o.finish()
        }
        #expect(issues.isEmpty)
    }

    @Test func reportsEveryProblemWithItsPath() {
        let issues = read([
            "n": 50, "rate": 1, "on": "yes", "every": "soon", "color": "gren", "tags": 3, "colour": "red",
            "nested": [1],
        ]) { o in
            _ = o.int("n", in: 1...10)
            _ = o.double("rate", in: .openUnit)
            _ = o.bool("on")
            _ = o.duration("every", in: .seconds(1) ... .seconds(3600))
            _ = o.choice("color", as: Color.self, noun: "color")
            _ = o.list("tags")
            _ = o.object("nested")
            _ = o.string("name", required: true)
            o.finish()
        }
        #expect(
            issues == [
                "things[2].n: must be between 1 and 10, got 50",
                "things[2].rate: must be > 0 and < 1, got 1",
                "things[2].on: must be true or false, got the string \"yes\"",
                "things[2].every: bad duration 'soon': use a whole number and a unit, such as 500ms, 30s, 10m, 1h or 1d",
                "things[2].color: unknown color 'gren'; did you mean 'green'?",
                "things[2].tags: must be a list, got 3",
                "things[2].nested: must be a mapping, got a list",
                "things[2].name: required key is missing",
                "things[2].colour: unknown key; did you mean 'color'?",
            ])
    }

    @Test func aNonMappingIsReportedOnce() {
        let d = ConfigDiagnostics()
        #expect(ConfigObject(["a", "b"], at: ConfigPath.root.key("source"), diagnostics: d) == nil)
        #expect(d.issues.map(\.description) == ["source: must be a mapping, got a list"])
    }

    @Test func explicitNullCountsAsAbsent() {
        let issues = read(["n": nil]) { o in
            #expect(o.int("n", in: 0...1) == nil)
            o.finish()
        }
        #expect(issues.isEmpty)
    }

    @Test func numberRangesDescribeThemselves() {
        #expect(NumberRange.openUnit.description == "> 0 and < 1")
        #expect(NumberRange.unit.description == "≥ 0 and ≤ 1")
        #expect(NumberRange.nonNegative.description == "≥ 0")
        #expect(NumberRange(0, 0.5).contains(0.5))
        #expect(!NumberRange.openUnit.contains(0))
    }

    @Test func kafkaTopicNames() {
        #expect(KafkaNames.isValidTopic("payments-alerts.v1_2"))
        for bad in ["", ".", "..", "bad topic", "ümlaut", String(repeating: "x", count: 250)] {
            #expect(!KafkaNames.isValidTopic(bad))
        }
    }
}
