import Foundation
import VigilCore
import VigilModels

/// Reads label records (`{"txn_id": "t1", "is_fraud": true, "ts": …}`): the event id under the
/// label source's `key`, the label under its `field`, and optionally the time the label became
/// known under the topology's event-time field (used by `replay` to deliver labels in time).
///
/// A label is true for `true`, a non-zero number, or the strings `"true"`, `"1"`, `"yes"` and
/// `"fraud"`; false for `false`, `0`, `"false"`, `"0"`, `"no"` and `"legit"`.
public struct LabelDecoder: Sendable {
    let key: [UInt8]
    let field: [UInt8]
    let timeField: [UInt8]?

    public init(source: LabelSource, timeField: String?) {
        key = Array(source.key.utf8)
        field = Array(source.field.utf8)
        self.timeField = timeField.map { Array($0.utf8) }
    }

    /// A decoded label and, when present, the time it became known (ms since the epoch).
    public struct Decoded: Sendable {
        public var record: LabelRecord
        public var time: Int64?
    }

    /// Decodes one label record, or says why it cannot.
    public func decode(_ bytes: UnsafeRawBufferPointer?) -> Result<Decoded, DeadLetterReason> {
        guard let bytes, !bytes.isEmpty else {
            return .failure(DeadLetterReason(.emptyEvent, "the label record has no value"))
        }
        var scanner = JSONScanner(bytes)
        var idHash: UInt64?
        var label: Bool?
        var time: Int64?
        do throws(JSONScanner.Failure) {
            try scanner.beginObject()
            while let token = try scanner.nextKey() {
                var name: [UInt8] = []
                try scanner.unescape(token, into: &name)
                let kind = try scanner.valueKind()
                if name == key {
                    switch kind {
                    case .string:
                        let s = try scanner.string()
                        var text: [UInt8] = []
                        try scanner.unescape(s, into: &text)
                        idHash = text.withUnsafeBytes { StableHash.hash($0) }
                    case .number:
                        let n = try scanner.number()
                        idHash = StableHash.hash(UnsafeRawBufferPointer(rebasing: bytes[n.start..<n.end]))
                    default:
                        return .failure(
                            DeadLetterReason(
                                .wrongType,
                                "label field '\(String(decoding: key, as: UTF8.self))' must be a string or a number"))
                    }
                } else if name == field {
                    switch kind {
                    case .true:
                        try scanner.literal("true")
                        label = true
                    case .false:
                        try scanner.literal("false")
                        label = false
                    case .number: label = try scanner.number().value != 0
                    case .string:
                        let s = try scanner.string()
                        switch String(decoding: UnsafeRawBufferPointer(rebasing: bytes[s.start..<s.end]), as: UTF8.self)
                            .lowercased()
                        {
                        case "true", "1", "yes", "fraud": label = true
                        case "false", "0", "no", "legit": label = false
                        default:
                            return .failure(DeadLetterReason(.wrongType, "label value is not a recognised truth value"))
                        }
                    default:
                        return .failure(
                            DeadLetterReason(
                                .wrongType,
                                "label field '\(String(decoding: field, as: UTF8.self))' must be a boolean, a number or a string"
                            ))
                    }
                } else if name == timeField {
                    switch kind {
                    case .number:
                        let v = try scanner.number().value
                        let ms = abs(v) >= 1e11 ? v : v * 1000
                        time = abs(ms) < 1e16 ? Int64(ms) : nil  // absurd times are ignored, never trapped on
                    case .string:
                        let s = try scanner.string()
                        time = RFC3339.milliseconds(UnsafeRawBufferPointer(rebasing: bytes[s.start..<s.end]))
                    default: try scanner.skipValue()
                    }
                } else {
                    try scanner.skipValue()
                }
            }
            try scanner.finish()
        } catch {
            return .failure(DeadLetterReason(.malformedJSON, error.message))
        }
        guard let idHash else {
            return .failure(DeadLetterReason(.missingKey, "the label has no '\(String(decoding: key, as: UTF8.self))'"))
        }
        guard let label else {
            return .failure(
                DeadLetterReason(.missingField, "the label has no '\(String(decoding: field, as: UTF8.self))'"))
        }
        return .success(Decoded(record: LabelRecord(idHash: idHash, isFraud: label), time: time))
    }
}

extension LabelDecoder {
    /// Every label of a JSON-lines file, in file order.
    /// - Throws: `VigilError` for an unreadable file, or the first line that is not a label
    ///   (`FILE:LINE: reason`).
    func decodeFile(_ path: String) throws(VigilError) -> [Decoded] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw VigilError(.ioFailed, "cannot read \(path)")
        }
        var out: [Decoded] = []
        var lineNumber = 0
        var failure: VigilError?
        data.withUnsafeBytes { all in
            var start = 0
            for k in 0...all.count where k == all.count || all[k] == 0x0A {
                defer { start = k + 1 }
                lineNumber += 1
                guard k > start, failure == nil else { continue }
                switch decode(UnsafeRawBufferPointer(rebasing: all[start..<k])) {
                case .success(let label): out.append(label)
                case .failure(let reason): failure = VigilError(.malformedInput, "\(path):\(lineNumber): \(reason)")
                }
            }
        }
        if let failure { throw failure }
        return out
    }
}
