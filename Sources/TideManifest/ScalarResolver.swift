/// YAML 1.1 implicit typing of plain scalars, by the YAML 1.1 type repository's rules (bool, int, float, merge,
/// null, timestamp, value, in that order), without regular expressions: matching each plain scalar against up to
/// seven ICU regexes, as Yams did, was once the largest single cost of parsing a big config repo.
enum ScalarResolver {
    enum Kind: Equatable {
        case bool, int, float, merge, null, timestamp, value, string
    }

    static func kind(of text: String) -> Kind {
        var text = text
        return text.withUTF8 { bytes in
            // Most scalars of a manifest are names and words: one starting with a letter that begins no bool or
            // null (yes, no, true, false, on, off, null) is a string, and is not copied to be checked.
            if let first = bytes.first, Self.onlyStringsStartWith[Int(first)] { return .string }
            return kind(of: Array(bytes))
        }
    }

    /// The ASCII letters no other kind's text starts with (every other kind starts with a digit, a sign, `.`, `~`,
    /// `<`, `=` or one of y, n, t, f, o in either case).
    private static let onlyStringsStartWith: [Bool] = (0..<256).map { byte in
        guard let scalar = Unicode.Scalar(UInt32(byte)), byte < 0x80, scalar.properties.isAlphabetic else {
            return false
        }
        return !"yYnNtTfFoO".unicodeScalars.contains(scalar)
    }

    static func kind(of s: [UInt8]) -> Kind {
        if isBool(s) { return .bool }
        if isInt(s) { return .int }
        if isFloat(s) { return .float }
        if s == [0x3C, 0x3C] { return .merge }  // <<
        if isNull(s) { return .null }
        if isTimestamp(s) { return .timestamp }
        if s == [0x3D] { return .value }  // =
        return .string
    }

    private static let bools: Set<String> = [
        "yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
        "on", "On", "ON", "off", "Off", "OFF",
    ]

    static func isBool(_ s: [UInt8]) -> Bool {
        s.count >= 2 && s.count <= 5 && bools.contains(String(decoding: s, as: UTF8.self))
    }

    static func isNull(_ s: [UInt8]) -> Bool {
        s.isEmpty || s == [0x7E] || ["null", "Null", "NULL"].contains(String(decoding: s, as: UTF8.self))
    }

    private static func digit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func digitOrUnderscore(_ c: UInt8) -> Bool { digit(c) || c == 0x5F }
    private static func isBinary(_ c: UInt8) -> Bool { c == 0x30 || c == 0x31 || c == 0x5F }
    private static func isOctal(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x37) || c == 0x5F }
    private static func isHex(_ c: UInt8) -> Bool {
        digitOrUnderscore(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
    }

    /// A cursor over the bytes of one scalar.
    private struct Cursor {
        let s: [UInt8]
        var i = 0

        init(_ s: [UInt8]) { self.s = s }
        var atEnd: Bool { i == s.count }
        var peek: UInt8? { i < s.count ? s[i] : nil }

        mutating func take(_ c: UInt8) -> Bool {
            guard peek == c else { return false }
            i += 1
            return true
        }

        mutating func takeSign() { if peek == 0x2B || peek == 0x2D { i += 1 } }

        /// Consumes bytes while `predicate` holds; how many.
        @discardableResult
        mutating func take(while predicate: (UInt8) -> Bool) -> Int {
            let start = i
            while let c = peek, predicate(c) { i += 1 }
            return i - start
        }

        /// `(?::[0-5]?[0-9])+` — one or more sexagesimal groups.
        mutating func sexagesimalGroups() -> Bool {
            var groups = 0
            while peek == 0x3A {
                let save = i
                i += 1
                // [0-5]?[0-9]: one digit, or two with the first in 0–5.
                guard let first = peek, digit(first) else {
                    i = save
                    break
                }
                i += 1
                if first <= 0x35, let second = peek, digit(second) { i += 1 }
                groups += 1
            }
            return groups > 0
        }
    }

    static func isInt(_ s: [UInt8]) -> Bool {
        func matches(_ body: (inout Cursor) -> Bool) -> Bool {
            var cursor = Cursor(s)
            cursor.takeSign()
            return body(&cursor) && cursor.atEnd
        }
        // [-+]?0b[0-1_]+
        if matches({ c in c.take(0x30) && c.take(0x62) && c.take(while: isBinary) > 0 }) { return true }
        // [-+]?0o?[0-7_]+
        if matches({ c in
            guard c.take(0x30) else { return false }
            _ = c.take(0x6F)
            return c.take(while: isOctal) > 0
        }) {
            return true
        }
        // [-+]?(?:0|[1-9][0-9_]*)
        if matches({ c in
            if c.take(0x30) { return true }
            guard let first = c.peek, first >= 0x31 && first <= 0x39 else { return false }
            c.i += 1
            c.take(while: digitOrUnderscore)
            return true
        }) {
            return true
        }
        // [-+]?0x[0-9a-fA-F_]+
        if matches({ c in c.take(0x30) && c.take(0x78) && c.take(while: isHex) > 0 }) { return true }
        // [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+
        return matches { c in
            guard let first = c.peek, first >= 0x31 && first <= 0x39 else { return false }
            c.i += 1
            c.take(while: digitOrUnderscore)
            return c.sexagesimalGroups()
        }
    }

    static func isFloat(_ s: [UInt8]) -> Bool {
        func matches(sign: Bool = true, _ body: (inout Cursor) -> Bool) -> Bool {
            var cursor = Cursor(s)
            if sign { cursor.takeSign() }
            return body(&cursor) && cursor.atEnd
        }
        func exponent(_ c: inout Cursor, signRequired: Bool) -> Bool {
            guard c.peek == 0x65 || c.peek == 0x45 else { return true }  // optional
            let save = c.i
            c.i += 1
            let signed = c.peek == 0x2B || c.peek == 0x2D
            if signed { c.i += 1 }
            if (signRequired && !signed) || c.take(while: digit) == 0 {
                c.i = save
                return true  // not an exponent: the end check fails on the leftover 'e'
            }
            return true
        }
        // [-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)?
        if matches({ c in
            guard let first = c.peek, digit(first) else { return false }
            c.i += 1
            c.take(while: digitOrUnderscore)
            if c.take(0x2E) { c.take(while: digitOrUnderscore) }
            return exponent(&c, signRequired: false)
        }) {
            return true
        }
        // \.[0-9_]+(?:[eE][-+][0-9]+)?
        if matches(
            sign: false,
            { c in
                c.take(0x2E) && c.take(while: digitOrUnderscore) > 0 && exponent(&c, signRequired: true)
            })
        {
            return true
        }
        // [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
        if matches({ c in
            guard let first = c.peek, digit(first) else { return false }
            c.i += 1
            c.take(while: digitOrUnderscore)
            guard c.sexagesimalGroups(), c.take(0x2E) else { return false }
            c.take(while: digitOrUnderscore)
            return true
        }) {
            return true
        }
        // [-+]?\.(?:inf|Inf|INF) and \.(?:nan|NaN|NAN)
        let text = String(decoding: s, as: UTF8.self)
        let unsigned = text.hasPrefix("+") || text.hasPrefix("-") ? String(text.dropFirst()) : text
        if [".inf", ".Inf", ".INF"].contains(unsigned) { return true }
        return [".nan", ".NaN", ".NAN"].contains(text)
    }

    static func isTimestamp(_ s: [UInt8]) -> Bool {
        var c = Cursor(s)
        func digits(_ min: Int, _ max: Int) -> Bool {
            let n = c.take(while: digit)
            guard n >= min && n <= max else { return false }
            return true
        }
        // yyyy-mm-dd exactly
        guard digits(4, 4), c.take(0x2D) else { return false }
        let monthStart = c.i
        guard digits(1, 2), c.take(0x2D) else { return false }
        let monthDigits = c.i - 1 - monthStart
        let dayStart = c.i
        guard digits(1, 2) else { return false }
        let dayDigits = c.i - dayStart
        if c.atEnd { return monthDigits == 2 && dayDigits == 2 }
        // (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?
        if !(c.take(0x54) || c.take(0x74)) {
            guard c.take(while: { $0 == 0x20 || $0 == 0x09 }) > 0 else { return false }
        }
        guard digits(1, 2), c.take(0x3A), digits(2, 2), c.take(0x3A), digits(2, 2) else { return false }
        if c.take(0x2E) { c.take(while: digit) }
        if c.atEnd { return true }
        c.take(while: { $0 == 0x20 || $0 == 0x09 })
        if c.take(0x5A) { return c.atEnd }
        guard c.peek == 0x2B || c.peek == 0x2D else { return false }
        c.i += 1
        guard digits(1, 2) else { return false }
        if c.take(0x3A) { guard digits(2, 2) else { return false } }
        return c.atEnd
    }

    /// How YAML 1.1 reads a plain scalar where a person (and YAML 1.2's core schema) would read something else:
    /// `yes`/`no`/`on`/`off` as booleans, `017` and `0o17` as octal 15, `0b101` as 5, `1_000` as 1000, `1:20` as 80
    /// (base 60). Nil for anything read the same way by both (`true`, `15`, `0x1F`, `1.5`, text).
    static func readDifferentlyByYAML11(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        if isBool(bytes), !["true", "True", "TRUE", "false", "False", "FALSE"].contains(text) {
            return "a boolean (\(["yes", "on"].contains(text.lowercased()) ? "true" : "false"))"
        }
        guard isInt(bytes) || isFloat(bytes) else { return nil }
        let unsigned = text.hasPrefix("-") || text.hasPrefix("+") ? String(text.dropFirst()) : text
        if unsigned.contains(":") { return "a number in base 60" }
        if unsigned.contains("_") { return "a number with its underscores dropped" }
        if unsigned.hasPrefix("0b") { return "a binary number" }
        if unsigned.hasPrefix("0o") { return "an octal number" }
        if unsigned.count > 1, unsigned.hasPrefix("0"), unsigned.allSatisfy(\.isNumber) {
            return unsigned.allSatisfy({ $0 < "8" }) ? "an octal number" : "a number without its leading zero"
        }
        return nil
    }
}
