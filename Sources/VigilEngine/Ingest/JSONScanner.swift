import Glibc

/// A forward-only reader of one JSON text in place: it walks the bytes once, hands back string
/// tokens as byte ranges, parses numbers without allocating, and skips what nobody asked for.
/// It checks the JSON grammar of everything it passes over, skipped values included, so a
/// malformed event is never half-accepted.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    var i = 0
    /// Whether `nextKey` is at the first member of the object `beginObject` opened.
    private var firstMember = false

    /// Nesting allowed inside skipped values; deeper input is refused rather than recursed into.
    static let maxDepth = 64

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// What went wrong, with the byte offset.
    struct Failure: Error {
        var message: String
        var offset: Int
    }

    /// A JSON string token: the bytes between its quotes, and whether they contain escapes.
    struct StringToken {
        var start: Int
        var end: Int
        var escaped: Bool
        var count: Int { end - start }
    }

    /// The kinds of value a token starts.
    enum ValueKind { case string, number, object, array, `true`, `false`, null }

    var atEnd: Bool { i >= bytes.count }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { return }
        }
    }

    @inline(__always)
    func peek() -> UInt8? { i < bytes.count ? bytes[i] : nil }

    func fail(_ message: String) -> Failure { Failure(message: message, offset: i) }

    mutating func expect(_ c: UInt8, _ what: String) throws(Failure) {
        skipWhitespace()
        guard i < bytes.count, bytes[i] == c else {
            throw fail(i < bytes.count ? "expected \(what) at byte \(i)" : "expected \(what), got the end of the input")
        }
        i += 1
    }

    /// Opens an object (after whitespace, the cursor must be on `{`); then `nextKey` walks it.
    mutating func beginObject() throws(Failure) {
        try expect(UInt8(ascii: "{"), "'{'")
        firstMember = true
    }

    /// The next member's key, with the cursor left on its value (which the caller must read or
    /// skip), or nil once the object is closed.
    mutating func nextKey() throws(Failure) -> StringToken? {
        skipWhitespace()
        if firstMember {
            firstMember = false
            if peek() == UInt8(ascii: "}") {
                i += 1
                return nil
            }
        } else {
            guard let c = peek() else { throw fail("unterminated object") }
            i += 1
            if c == UInt8(ascii: "}") { return nil }
            guard c == UInt8(ascii: ",") else { throw fail("expected ',' or '}' at byte \(i - 1)") }
            skipWhitespace()
        }
        guard peek() == UInt8(ascii: "\"") else { throw fail("expected a key string at byte \(i)") }
        let name = try string()
        try expect(UInt8(ascii: ":"), "':'")
        return name
    }

    /// Checks that only whitespace follows the value just read.
    mutating func finish() throws(Failure) {
        skipWhitespace()
        if !atEnd { throw fail("unexpected data after the value at byte \(i)") }
    }

    /// The kind of the value at the cursor (after whitespace), without consuming it.
    mutating func valueKind() throws(Failure) -> ValueKind {
        skipWhitespace()
        guard let c = peek() else { throw fail("expected a value, got the end of the input") }
        switch c {
        case UInt8(ascii: "\""): return .string
        case UInt8(ascii: "{"): return .object
        case UInt8(ascii: "["): return .array
        case UInt8(ascii: "t"): return .true
        case UInt8(ascii: "f"): return .false
        case UInt8(ascii: "n"): return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number
        default: throw fail("unexpected byte '\(Self.printable(c))' at byte \(i)")
        }
    }

    /// Reads a string token; the cursor must be on its opening quote.
    mutating func string() throws(Failure) -> StringToken {
        i += 1
        let start = i
        var escaped = false
        var nonASCII = false
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                // JSON text is UTF-8 (RFC 8259): a string of other bytes is refused, not passed on
                // to alerts and dead letters that their consumers could not parse.
                if nonASCII, !Self.isValidUTF8(UnsafeRawBufferPointer(rebasing: bytes[start..<i])) {
                    throw fail("a string that is not valid UTF-8 at byte \(start - 1)")
                }
                let token = StringToken(start: start, end: i, escaped: escaped)
                i += 1
                return token
            }
            if c == UInt8(ascii: "\\") {
                escaped = true
                i += 1
                guard i < bytes.count else { break }
                switch bytes[i] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "u"):
                    guard i + 4 < bytes.count, (1...4).allSatisfy({ Self.hexValue(bytes[i + $0]) != nil }) else {
                        throw fail("bad \\u escape at byte \(i - 1)")
                    }
                    i += 5
                default:
                    throw fail("bad escape '\\\(Self.printable(bytes[i]))' at byte \(i - 1)")
                }
                continue
            }
            if c < 0x20 { throw fail("control character in a string at byte \(i)") }
            if c >= 0x80 { nonASCII = true }
            i += 1
        }
        throw fail("unterminated string starting at byte \(start - 1)")
    }

    /// Consumes a literal (`true`, `false`, `null`).
    mutating func literal(_ word: StaticString) throws(Failure) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count, memcmp(bytes.baseAddress! + i, word.utf8Start, n) == 0 else {
            throw fail("invalid literal at byte \(i)")
        }
        i += n
    }

    /// Parses a number at the cursor, checking JSON's grammar; returns its value and the range
    /// of its text.
    mutating func number() throws(Failure) -> (value: Double, start: Int, end: Int) {
        let start = i
        var negative = false
        if bytes[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        var mantissa: UInt64 = 0
        var digits = 0  // significant digits folded into mantissa
        var dropped = 0  // integer digits beyond 19, which scale the value
        var exponent = 0
        guard i < bytes.count, Self.isDigit(bytes[i]) else { throw fail("bad number at byte \(start)") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
        } else {
            while i < bytes.count, Self.isDigit(bytes[i]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(bytes[i] &- 48)
                    if mantissa != 0 { digits += 1 }
                } else {
                    dropped += 1
                }
                i += 1
            }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, Self.isDigit(bytes[i]) else { throw fail("bad number at byte \(start)") }
            while i < bytes.count, Self.isDigit(bytes[i]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(bytes[i] &- 48)
                    if mantissa != 0 { digits += 1 }
                    exponent -= 1
                } else {
                    dropped += 1
                }
                i += 1
            }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            var expNegative = false
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                expNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < bytes.count, Self.isDigit(bytes[i]) else { throw fail("bad number at byte \(start)") }
            var e = 0
            while i < bytes.count, Self.isDigit(bytes[i]) {
                if e < 100_000 { e = e * 10 + Int(bytes[i] &- 48) }
                i += 1
            }
            exponent += expNegative ? -e : e
        }
        let end = i
        // Clinger's fast path: up to 15 significant digits and a power of ten that is exact in a
        // Double give the correctly rounded result in one multiplication or division.
        if dropped == 0, digits <= 15, exponent >= -22, exponent <= 22 {
            var v = Double(mantissa)
            if exponent < 0 {
                v /= Self.powersOfTen[-exponent]
            } else if exponent > 0 {
                v *= Self.powersOfTen[exponent]
            }
            return (negative ? -v : v, start, end)
        }
        let value = Self.slowDouble(bytes, start, end)
        // Beyond Double's range (1e999): Foundation's parser refuses it, and an infinite amount
        // would poison every sum and mean it reaches.
        guard value.isFinite else { throw fail("a number out of range at byte \(start)") }
        return (value, start, end)
    }

    /// strtod on a NUL-terminated copy: the rare numbers the fast path cannot round exactly.
    static func slowDouble(_ bytes: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Double {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: end - start + 1) { buffer in
            for k in 0..<(end - start) { buffer[k] = CChar(bitPattern: bytes[start + k]) }
            buffer[end - start] = 0
            return strtod(buffer.baseAddress!, nil)
        }
    }

    static let powersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { r, _ in r * 10 } }

    /// Skips one value of any kind, checking its grammar; nesting deeper than `maxDepth` fails.
    mutating func skipValue() throws(Failure) {
        var depth = 0
        // Whether the innermost open container is an object (then a key comes next).
        var inObject: [Bool] = []
        while true {
            switch try valueKind() {
            case .string: _ = try string()
            case .number: _ = try number()
            case .true: try literal("true")
            case .false: try literal("false")
            case .null: try literal("null")
            case .object, .array:
                let isObject = bytes[i] == UInt8(ascii: "{")
                i += 1
                depth += 1
                if depth > Self.maxDepth { throw fail("nested deeper than \(Self.maxDepth) levels") }
                inObject.append(isObject)
                skipWhitespace()
                if peek() == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    i += 1
                    depth -= 1
                    inObject.removeLast()
                } else {
                    if isObject { try keyThenColon() }
                    continue
                }
            }
            // After a value: close containers or move to the next element.
            while depth > 0 {
                skipWhitespace()
                guard let c = peek() else { throw fail("unterminated \(inObject.last! ? "object" : "array")") }
                if c == UInt8(ascii: ",") {
                    i += 1
                    if inObject.last! { try keyThenColon() }
                    break
                }
                let close = inObject.last! ? UInt8(ascii: "}") : UInt8(ascii: "]")
                guard c == close else { throw fail("expected ',' or '\(Self.printable(close))' at byte \(i)") }
                i += 1
                depth -= 1
                inObject.removeLast()
            }
            if depth == 0 { return }
        }
    }

    private mutating func keyThenColon() throws(Failure) {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw fail("expected a key string at byte \(i)") }
        _ = try string()
        try expect(UInt8(ascii: ":"), "':'")
    }

    /// The unescaped bytes of a string token, written to `out` (which is cleared first).
    func unescape(_ token: StringToken, into out: inout [UInt8]) throws(Failure) {
        out.removeAll(keepingCapacity: true)
        var k = token.start
        while k < token.end {
            let c = bytes[k]
            guard c == UInt8(ascii: "\\") else {
                out.append(c)
                k += 1
                continue
            }
            let e = bytes[k + 1]
            k += 2
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(k)
                k += 4
                if (0xD800..<0xDC00).contains(scalar) {
                    // A high surrogate must be followed by an escaped low one.
                    guard k + 6 <= token.end, bytes[k] == UInt8(ascii: "\\"), bytes[k + 1] == UInt8(ascii: "u") else {
                        throw Failure(message: "unpaired surrogate in a \\u escape", offset: k)
                    }
                    let low = hex4(k + 2)
                    guard (0xDC00..<0xE000).contains(low) else {
                        throw Failure(message: "unpaired surrogate in a \\u escape", offset: k)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    k += 6
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw Failure(message: "unpaired surrogate in a \\u escape", offset: k)
                }
                out.append(contentsOf: Unicode.UTF8.encode(Unicode.Scalar(scalar)!)!)
            default: out.append(e)  // \" \\ \/
            }
        }
    }

    private func hex4(_ at: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { v, j in v << 4 | UInt32(Self.hexValue(bytes[at + j])!) }
    }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool { c &- 48 < 10 }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - 48
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - 87
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - 55
        default: return nil
        }
    }

    static func printable(_ c: UInt8) -> String {
        (0x20..<0x7F).contains(c) ? String(UnicodeScalar(c)) : "0x" + String(c, radix: 16)
    }

    /// Whether `bytes` is valid UTF-8 (ASCII checked first, the common case).
    static func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if bytes.allSatisfy({ $0 < 0x80 }) { return true }
        var it = bytes.makeIterator()
        var decoder = Unicode.UTF8()
        while true {
            switch decoder.decode(&it) {
            case .scalarValue: continue
            case .emptyInput: return true
            case .error: return false
            }
        }
    }
}
