import Foundation
import Testing
import VigilCore
import VigilModels
import VigilTestKit

@testable import VigilEngine

@Suite(.ownThread) struct EventDecoderTests {
    static let topology: Topology = {
        let path = CLI.repositoryRoot.appendingPathComponent("topologies/card-payments.yaml").path
        return try! TopologyLoader.load(path: path)
    }()

    /// The card-payments topology with `time.format: auto`.
    static let autoTime: Topology = {
        var t = topology
        t.source.time!.format = .auto
        return t
    }()

    struct Decoded {
        var result: Result<EventDecoder.Decoded, DeadLetterReason>
        var batch: EventBatch
    }

    func decode(_ text: String, topology: Topology = topology) -> Decoded {
        var decoder = EventDecoder(source: topology.source, schema: topology.schema)
        var batch = EventBatch(layout: decoder.layout)
        let bytes = Array(text.utf8)
        let result = bytes.withUnsafeBytes { decoder.decode($0, arrivalMs: 42, into: &batch) }
        return Decoded(result: result, batch: batch)
    }

    func reason(_ text: String) -> DeadLetterReason.Code? {
        if case .failure(let r) = decode(text).result { return r.code }
        return nil
    }

    static let valid =
        #"{"txn_id":"t1","card_id":"card-7","ts":1767225600123,"amount":12.5,"merchant_id":"m1","merchant_category":"grocery","country":"DE","channel":"pos"}"#

    @Test func aValidEventFillsItsRow() throws {
        let d = decode(Self.valid)
        let decoded = try d.result.get()
        #expect(d.batch.count == 1)
        #expect(decoded.key == StableHash.hash("card-7"))
        #expect(decoded.idHash == StableHash.hash("t1"))
        #expect(decoded.time == 1_767_225_600_123)
        let layout = d.batch.layout
        #expect(d.batch.numbers[layout.numbers.firstIndex(of: "amount")!] == 12.5)
        #expect(d.batch.categories[layout.categories.firstIndex(of: "country")!] == StableHash.category("DE"))
        #expect(d.batch.categories[layout.categories.firstIndex(of: "card_id")!] == StableHash.category("card-7"))
        let text = Array(Self.valid.utf8)
        #expect(String(decoding: text[decoded.keyRange], as: UTF8.self) == "card-7")
        #expect(String(decoding: text[decoded.idRange!], as: UTF8.self) == "t1")
    }

    @Test func fieldOrderWhitespaceUnknownFieldsAndEscapesDoNotMatter() throws {
        let text = """
             { "extra": {"deep": [1, 2, {"x": null}], "s": "a\\"b"}, "channel": null,
              "country":"D\\u0045", "merchant_category":"grocery", "merchant_id":"m1",
              "amount": 1.25e1, "ts": "2026-01-01T00:00:00.123Z", "card_id": "card-\\u0037", "txn_id": "t1" }
            """
        let d = decode(text, topology: Self.autoTime)
        let decoded = try d.result.get()
        #expect(decoded.key == StableHash.hash("card-7"))
        #expect(decoded.time == 1_767_225_600_123)
        let layout = d.batch.layout
        #expect(d.batch.numbers[layout.numbers.firstIndex(of: "amount")!] == 12.5)
        #expect(d.batch.categories[layout.categories.firstIndex(of: "country")!] == StableHash.category("DE"))
        // The optional channel is null: missing.
        #expect(d.batch.categories[layout.categories.firstIndex(of: "channel")!] == 0)
    }

    @Test(arguments: [
        (#"{"txn_id":"t1","card_id":"c""#, "malformed_json"),
        ("not json", "malformed_json"),
        (#"{"txn_id":"t1",}"#, "malformed_json"),
        (#"{"a":1} trailing"#, "malformed_json"),
        (#"[1,2]"#, "not_an_object"),
        (#""just a string""#, "not_an_object"),
        (
            #"{"txn_id":"t1","ts":1767225600123,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_key"
        ),
        (
            #"{"txn_id":"t1","card_id":null,"ts":1767225600123,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_key"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","ts":1767225600123,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_field"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","ts":1767225600123,"amount":"12","merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "wrong_type"
        ),
        (
            #"{"txn_id":"t1","card_id":{"a":1},"ts":1767225600123,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "wrong_type"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","ts":1767225600123,"amount":-5,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "out_of_range"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "missing_time"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","ts":"yesterday","amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "bad_time"
        ),
        (
            #"{"txn_id":"t1","card_id":"c","ts":true,"amount":1,"merchant_id":"m","merchant_category":"g","country":"C"}"#,
            "wrong_type"
        ),
        ("", "empty_event"),
    ])
    func badEventsAreRefusedWithTheirReason(text: String, code: String) {
        let d = decode(text)
        guard case .failure(let reason) = d.result else {
            Issue.record("accepted: \(text)")
            return
        }
        #expect(reason.code.rawValue == code, "\(text): \(reason)")
        #expect(!reason.detail.isEmpty)
        #expect(d.batch.count == 0, "a refused event must leave the batch untouched")
    }

    @Test func oversizedEventsAreRefusedUnread() {
        let big = Self.valid.dropLast() + #","pad":""# + String(repeating: "x", count: 70_000) + #""}"#
        #expect(reason(String(big)) == .oversized)
    }

    @Test func invalidUTF8InTheKeyIsRefused() {
        var bytes = Array(Self.valid.utf8)
        let at = bytes.firstRange(of: Array("card-7".utf8))!.lowerBound
        bytes[at] = 0xFF
        var decoder = EventDecoder(source: Self.topology.source, schema: Self.topology.schema)
        var batch = EventBatch(layout: decoder.layout)
        let result = bytes.withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }
        guard case .failure(let r) = result else {
            Issue.record("accepted invalid UTF-8")
            return
        }
        #expect(r.code == .malformedJSON)
    }

    @Test(arguments: [
        ("0", 0.0), ("-0.5", -0.5), ("12345.678", 12345.678), ("1e-7", 1e-7), ("6.02214076e23", 6.02214076e23),
        ("123456789012345678901234567890", 123456789012345678901234567890.0), ("0.1", 0.1),
        ("9007199254740993", 9007199254740993.0),
        ("2.2250738585072014e-308", 2.2250738585072014e-308), ("1.7976931348623157e308", 1.7976931348623157e308),
    ])
    func numbersParseToTheCorrectlyRoundedDouble(text: String, value: Double) throws {
        let event = Self.valid.replacingOccurrences(of: #""amount":12.5"#, with: #""amount":\#(text)"#)
        var topology = Self.topology
        topology.schema.fields = topology.schema.fields.map { f in
            var f = f
            f.min = nil
            return f
        }
        let d = decode(event, topology: topology)
        _ = try d.result.get()
        #expect(d.batch.numbers[d.batch.layout.numbers.firstIndex(of: "amount")!] == value)
        #expect(value == Double(text)!)
    }

    @Test func numbersAgreeWithTheStandardLibraryOnRandomInput() throws {
        var random = SeededRandom(seed: 11)
        for _ in 0..<20_000 {
            let digits = 1 + random.below(20)
            var text = random.chance(0.3) ? "-" : ""
            text += String(1 + random.below(9))
            for _ in 1..<digits { text += String(random.below(10)) }
            if random.chance(0.5) {
                text += "."
                for _ in 0..<(1 + random.below(12)) { text += String(random.below(10)) }
            }
            if random.chance(0.3) { text += "e" + (random.chance(0.5) ? "-" : "") + String(random.below(300)) }
            let bytes = Array(text.utf8)
            let parsed = try? bytes.withUnsafeBytes { raw in
                var scanner = JSONScanner(raw)
                return try scanner.number().value
            }
            // Beyond Double's range the scanner refuses what the standard library reads as ±inf.
            let expected = Double(text)!
            #expect(parsed == (expected.isFinite ? expected : nil), "\(text)")
        }
    }

    @Test(arguments: [
        ("2026-01-01T00:00:00Z", Int64(1_767_225_600_000)), ("2026-01-01T00:00:00.5Z", 1_767_225_600_500),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600_000), ("2025-12-31T23:00:00-01:00", 1_767_225_600_000),
        ("2024-02-29T12:34:56.789Z", 1_709_210_096_789), ("1970-01-01T00:00:00Z", 0),
    ])
    func rfc3339TimesAreRead(text: String, ms: Int64) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { RFC3339.milliseconds($0) } == ms)
    }

    @Test(arguments: [
        "2026-02-30T00:00:00Z", "2026-01-01 00:00:00", "2026-01-01T00:00:00", "2026-1-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
    ])
    func badRFC3339TimesAreRefused(text: String) {
        #expect(Array(text.utf8).withUnsafeBytes { RFC3339.milliseconds($0) } == nil)
    }

    @Test func epochSecondsAndMillisecondsAreToldApartByMagnitude() throws {
        let seconds = Self.valid.replacingOccurrences(of: "1767225600123", with: "1767225600.5")
        #expect(try decode(seconds, topology: Self.autoTime).result.get().time == 1_767_225_600_500)
        #expect(try decode(Self.valid, topology: Self.autoTime).result.get().time == 1_767_225_600_123)
        // unix_ms as declared: a string is refused.
        let rfc = Self.valid.replacingOccurrences(of: "1767225600123", with: #""2026-01-01T00:00:00Z""#)
        #expect(reason(rfc) == .badTime)
    }

    /// Random bytes, and random damage to valid events: the decoder never crashes, and what it
    /// accepts Foundation's parser also accepts (as an object).
    @Test func fuzzedInputNeverCrashesAndOnlyValidJSONIsAccepted() {
        var random = SeededRandom(seed: 5)
        var decoder = EventDecoder(source: Self.topology.source, schema: Self.topology.schema)
        var batch = EventBatch(layout: decoder.layout)
        let base = Array(Self.valid.utf8)
        let alphabet = Array(#"{}[]":,.-+eE0123456789 \tntrufals"\u"#.utf8)
        var accepted = 0
        for round in 0..<30_000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0:
                bytes = (0..<random.below(64)).map { _ in
                    random.chance(0.7) ? alphabet[random.below(alphabet.count)] : UInt8(random.below(256))
                }
            case 1:
                bytes = base
                for _ in 0..<(1 + random.below(4)) {
                    let at = random.below(bytes.count)
                    switch random.below(3) {
                    case 0: bytes[at] = alphabet[random.below(alphabet.count)]
                    case 1: bytes.remove(at: at)
                    default: bytes.insert(alphabet[random.below(alphabet.count)], at: at)
                    }
                }
            default:
                bytes = Array(base.prefix(random.below(base.count + 1)))
            }
            let result = bytes.withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }
            if case .success = result {
                accepted += 1
                let object = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
                #expect(
                    object is [String: Any],
                    "accepted what Foundation refuses: \(String(decoding: bytes, as: UTF8.self))")
            }
        }
        #expect(accepted > 100)
        #expect(batch.count == accepted)
    }

    /// Found by the event and label fuzz targets (Tests/Fuzz/Crashes): invalid UTF-8 in any
    /// string (a value that is only hashed, a skipped one, a key) was accepted, and Foundation's
    /// parser, like every consumer of the alerts, refuses such text.
    @Test func invalidUTF8InAnyStringIsRefusedAndValidUTF8IsNot() {
        var decoder = EventDecoder(source: Self.topology.source, schema: Self.topology.schema)
        var batch = EventBatch(layout: decoder.layout)
        let valid = Array(Self.valid.utf8)
        for (word, bad) in [("m1", [0xE8, 0xE8]), ("grocery", [0xC0, 0x80]), ("channel", [0xED, 0xA0, 0x80])]
            as [(String, [UInt8])]
        {
            var bytes = valid
            bytes.replaceSubrange(bytes.firstRange(of: Array(word.utf8))!, with: bad)
            let result = bytes.withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }
            guard case .failure(let r) = result else {
                Issue.record("accepted invalid UTF-8 in place of \(word)")
                continue
            }
            #expect(r.code == .malformedJSON)
        }
        let unskipped = Self.valid.dropLast() + #","note":"caf\#u{E9} \#u{1F600}"}"#
        let result = Array(unskipped.utf8).withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }
        #expect((try? result.get()) != nil, "valid UTF-8 outside ASCII is accepted")
        // Found by the long event run: a number beyond Double's range read as infinity.
        let huge = Self.valid.replacingOccurrences(of: "12.5", with: "20.5e+0000001599")
        let hugeResult = Array(huge.utf8).withUnsafeBytes { decoder.decode($0, arrivalMs: 0, into: &batch) }
        #expect((try? hugeResult.get()) == nil, "a number beyond Double's range is refused")
        let label = LabelDecoder(source: LabelSource(topic: "l", key: "txn_id", field: "is_fraud"), timeField: "ts")
        let broken: [UInt8] = Array(#"{"txn_id":"t3-142","is_fraud":false,"ts"#.utf8) + [0xE2] + Array(#"":1}"#.utf8)
        #expect(throws: DeadLetterReason.self) { try broken.withUnsafeBytes { label.decode($0) }.get() }
    }

    @Test func labelsAreDecodedFromBooleansNumbersAndWords() throws {
        let source = LabelSource(topic: "l", key: "txn_id", field: "is_fraud")
        let decoder = LabelDecoder(source: source, timeField: "ts")
        func label(_ text: String) -> Result<LabelDecoder.Decoded, DeadLetterReason> {
            Array(text.utf8).withUnsafeBytes { decoder.decode($0) }
        }
        let a = try label(#"{"txn_id":"t1","is_fraud":true,"ts":1767225600000}"#).get()
        #expect(a.record == LabelRecord(idHash: StableHash.hash("t1"), isFraud: true))
        #expect(a.time == 1_767_225_600_000)
        #expect(try label(#"{"is_fraud":0,"txn_id":"t2"}"#).get().record.isFraud == false)
        #expect(
            try label(#"{"is_fraud":"fraud","txn_id":17}"#).get().record
                == LabelRecord(idHash: StableHash.hash("17"), isFraud: true))
        #expect(try label(#"{"txn_id":"t3","is_fraud":true,"ts":1e300}"#).get().time == nil)
        for bad in [#"{"txn_id":"t1"}"#, #"{"is_fraud":true}"#, #"{"txn_id":"t1","is_fraud":"maybe"}"#, "nope"] {
            #expect(throws: DeadLetterReason.self) { try label(bad).get() }
        }
    }
}
