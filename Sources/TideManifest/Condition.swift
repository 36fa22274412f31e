/// The small, safe expression language of analysis conditions: `result < 0.01`,
/// `result.p99 <= 250 && result["errors"] / result.total < 0.05`, `!(result == 0)`.
///
/// Literals (numbers, 'strings', "strings", true, false, null), `result` with `.field`, `["key"]` and `[index]`,
/// arithmetic (+ - * / with the usual precedence, unary -), comparisons (< <= > >= == !=), `&&`, `||`, `!` and
/// parentheses. Nothing else: no calls, no assignment, no loops — evaluating cannot run code.
public struct Condition: Sendable, Hashable, CustomStringConvertible {
    indirect enum Expression: Sendable, Hashable {
        case literal(JSONValue)
        case result
        case member(Expression, String)
        case index(Expression, Expression)
        case unary(String, Expression)
        case binary(String, Expression, Expression)
    }

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var message: String
        /// 1-based column in the condition text.
        public var column: Int
        public var description: String { "column \(column): \(message)" }
    }

    public struct EvaluationError: Error, CustomStringConvertible, Sendable {
        public var description: String

        public init(description: String) { self.description = description }
    }

    public let text: String
    let expression: Expression

    public var description: String { text }

    /// Longest condition text, and deepest nesting of parentheses, brackets and prefix operators: parsing and
    /// evaluating recurse, and a condition of 20,000 parentheses or a million `!` must be an error, not a crash.
    public static let maximumLength = 1000
    public static let maximumNesting = 32

    public init(_ text: String) throws(ParseError) {
        guard text.count <= Self.maximumLength else {
            throw ParseError(
                message: "a condition is at most \(Self.maximumLength) characters (this one has \(text.count))",
                column: Self.maximumLength + 1)
        }
        var parser = Parser(tokens: try Self.tokenize(text), end: text.count + 1)
        self.expression = try parser.parseOr()
        if let extra = parser.peek {
            throw ParseError(message: "unexpected '\(extra.text)'", column: extra.column)
        }
        self.text = text
    }

    /// Evaluates to true or false; anything else (a number, a missing field) is an evaluation error.
    public func evaluate(result: JSONValue) throws(EvaluationError) -> Bool {
        switch try Self.evaluate(expression, result) {
        case .bool(let value): return value
        case let other: throw EvaluationError(description: "'\(text)' gives \(other.canonicalJSON), not true or false")
        }
    }

    /// The value the expression gives (`result.p99`, `result.errors / result.requests`).
    public func value(result: JSONValue) throws(EvaluationError) -> JSONValue {
        try Self.evaluate(expression, result)
    }

    // MARK: - Evaluation

    static func evaluate(_ expression: Expression, _ result: JSONValue) throws(EvaluationError) -> JSONValue {
        switch expression {
        case .literal(let value): return value
        case .result: return result
        case .member(let base, let name):
            guard case .object(let members) = try evaluate(base, result), let value = members[name] else {
                throw EvaluationError(description: "result has no field '\(name)'")
            }
            return value
        case .index(let base, let indexExpression):
            let container = try evaluate(base, result)
            let index = try evaluate(indexExpression, result)
            switch (container, index) {
            case (.object(let members), .string(let key)):
                guard let value = members[key] else {
                    throw EvaluationError(description: "result has no field '\(key)'")
                }
                return value
            case (.array(let items), _):
                guard let value = number(index), value.isFinite, let position = Int(exactly: value.rounded(.down)),
                    position >= 0, position < items.count
                else {
                    throw EvaluationError(
                        description: "index \(index.canonicalJSON) is outside a list of \(items.count)")
                }
                return items[position]
            default:
                throw EvaluationError(
                    description: "cannot index \(container.canonicalJSON) with \(index.canonicalJSON)")
            }
        case .unary(let op, let operand):
            let value = try evaluate(operand, result)
            if op == "!" {
                guard case .bool(let flag) = value else { throw EvaluationError(description: "! needs true or false") }
                return .bool(!flag)
            }
            guard let number = number(value) else { throw EvaluationError(description: "- needs a number") }
            return .double(-number)
        case .binary(let op, let lhs, let rhs):
            if op == "&&" || op == "||" {
                guard case .bool(let left) = try evaluate(lhs, result) else {
                    throw EvaluationError(description: "\(op) needs true or false")
                }
                if op == "&&" && !left { return .bool(false) }
                if op == "||" && left { return .bool(true) }
                guard case .bool(let right) = try evaluate(rhs, result) else {
                    throw EvaluationError(description: "\(op) needs true or false")
                }
                return .bool(right)
            }
            let left = try evaluate(lhs, result)
            let right = try evaluate(rhs, result)
            if op == "==" || op == "!=" {
                let equal: Bool
                if let a = number(left), let b = number(right) {
                    equal = a == b
                } else if number(left) != nil || number(right) != nil, left != .null, right != .null {
                    // A number against a string (or a list, a bool): the condition is wrong for the data; an
                    // evaluation error, never a quiet false that lets a canary through.
                    throw EvaluationError(
                        description: "cannot compare \(left.canonicalJSON) and \(right.canonicalJSON) with \(op)")
                } else {
                    equal = left == right
                }
                return .bool(op == "==" ? equal : !equal)
            }
            if let a = number(left), let b = number(right) {
                switch op {
                case "+": return .double(a + b)
                case "-": return .double(a - b)
                case "*": return .double(a * b)
                case "/":
                    guard b != 0 else { throw EvaluationError(description: "division by zero") }
                    return .double(a / b)
                case "<": return .bool(a < b)
                case "<=": return .bool(a <= b)
                case ">": return .bool(a > b)
                case ">=": return .bool(a >= b)
                default: break
                }
            }
            if case .string(let a) = left, case .string(let b) = right {
                switch op {
                case "<": return .bool(a < b)
                case "<=": return .bool(a <= b)
                case ">": return .bool(a > b)
                case ">=": return .bool(a >= b)
                case "+": return .string(a + b)
                default: break
                }
            }
            throw EvaluationError(
                description: "cannot apply \(op) to \(left.canonicalJSON) and \(right.canonicalJSON)")
        }
    }

    /// The number a JSON value holds, if it is one.
    public static func number(_ value: JSONValue) -> Double? {
        switch value {
        case .int(let v): Double(v)
        case .double(let v): v
        default: nil
        }
    }

    // MARK: - Parsing

    struct Token: Equatable {
        enum Kind: Equatable { case number(Double), string(String), word(String), symbol(String) }
        var kind: Kind
        var text: String
        var column: Int
    }

    static func tokenize(_ text: String) throws(ParseError) -> [Token] {
        let characters = Array(text)
        var tokens: [Token] = []
        var i = 0
        while i < characters.count {
            let c = characters[i]
            let column = i + 1
            if c == " " || c == "\t" {
                i += 1
            } else if c.isNumber || (c == "." && i + 1 < characters.count && characters[i + 1].isNumber) {
                var j = i
                while j < characters.count
                    && (characters[j].isNumber || characters[j] == "." || characters[j] == "e"
                        || ((characters[j] == "-" || characters[j] == "+") && j > i && characters[j - 1] == "e"))
                {
                    j += 1
                }
                let literal = String(characters[i..<j])
                guard let value = Double(literal) else {
                    throw ParseError(message: "bad number '\(literal)'", column: column)
                }
                tokens.append(Token(kind: .number(value), text: literal, column: column))
                i = j
            } else if c == "'" || c == "\"" {
                var j = i + 1
                var value = ""
                while j < characters.count && characters[j] != c {
                    if characters[j] == "\\" && j + 1 < characters.count { j += 1 }
                    value.append(characters[j])
                    j += 1
                }
                guard j < characters.count else { throw ParseError(message: "unterminated string", column: column) }
                tokens.append(Token(kind: .string(value), text: String(characters[i...j]), column: column))
                i = j + 1
            } else if c.isLetter || c == "_" {
                var j = i
                while j < characters.count && (characters[j].isLetter || characters[j].isNumber || characters[j] == "_")
                {
                    j += 1
                }
                let word = String(characters[i..<j])
                tokens.append(Token(kind: .word(word), text: word, column: column))
                i = j
            } else {
                let two = i + 1 < characters.count ? String(characters[i...i + 1]) : ""
                if ["<=", ">=", "==", "!=", "&&", "||"].contains(two) {
                    tokens.append(Token(kind: .symbol(two), text: two, column: column))
                    i += 2
                } else if "<>+-*/!()[].".contains(c) {
                    tokens.append(Token(kind: .symbol(String(c)), text: String(c), column: column))
                    i += 1
                } else {
                    throw ParseError(message: "unexpected character '\(c)'", column: column)
                }
            }
        }
        return tokens
    }

    struct Parser {
        var tokens: [Token]
        var position = 0
        /// The column just past the text: where "ends too early" and a missing ')' or ']' are reported.
        var end = 1

        init(tokens: [Token], end: Int) {
            self.tokens = tokens
            self.end = end
        }

        var peek: Token? { position < tokens.count ? tokens[position] : nil }

        mutating func take(_ symbol: String) -> Bool {
            guard let token = peek, token.kind == .symbol(symbol) else { return false }
            position += 1
            return true
        }

        mutating func parseOr() throws(ParseError) -> Expression {
            var left = try parseAnd()
            while take("||") { left = .binary("||", left, try parseAnd()) }
            return left
        }

        mutating func parseAnd() throws(ParseError) -> Expression {
            var left = try parseComparison()
            while take("&&") { left = .binary("&&", left, try parseComparison()) }
            return left
        }

        mutating func parseComparison() throws(ParseError) -> Expression {
            let left = try parseSum()
            for op in ["<=", ">=", "==", "!=", "<", ">"] where take(op) {
                return .binary(op, left, try parseSum())
            }
            return left
        }

        mutating func parseSum() throws(ParseError) -> Expression {
            var left = try parseProduct()
            while true {
                if take("+") {
                    left = .binary("+", left, try parseProduct())
                } else if take("-") {
                    left = .binary("-", left, try parseProduct())
                } else {
                    return left
                }
            }
        }

        mutating func parseProduct() throws(ParseError) -> Expression {
            var left = try parseUnary()
            while true {
                if take("*") {
                    left = .binary("*", left, try parseUnary())
                } else if take("/") {
                    left = .binary("/", left, try parseUnary())
                } else {
                    return left
                }
            }
        }

        /// How deep the parse is in parentheses, brackets and prefix operators.
        var depth = 0

        mutating func nested<T>(at column: Int, _ body: (inout Parser) throws(ParseError) -> T) throws(ParseError) -> T
        {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Condition.maximumNesting else {
                throw ParseError(message: "nested more than \(Condition.maximumNesting) deep", column: column)
            }
            return try body(&self)
        }

        mutating func parseUnary() throws(ParseError) -> Expression {
            let column = peek?.column ?? end
            if take("!") {
                return .unary("!", try nested(at: column) { parser throws(ParseError) in try parser.parseUnary() })
            }
            if take("-") {
                return .unary("-", try nested(at: column) { parser throws(ParseError) in try parser.parseUnary() })
            }
            return try parsePostfix()
        }

        mutating func parsePostfix() throws(ParseError) -> Expression {
            var base = try parsePrimary()
            while true {
                if take(".") {
                    guard let token = peek, case .word(let name) = token.kind else {
                        throw ParseError(message: "expected a field name after '.'", column: peek?.column ?? end)
                    }
                    position += 1
                    base = .member(base, name)
                } else if take("[") {
                    let index = try nested(at: peek?.column ?? end) { parser throws(ParseError) in try parser.parseOr()
                    }
                    guard take("]") else { throw ParseError(message: "expected ']'", column: peek?.column ?? end) }
                    base = .index(base, index)
                } else {
                    return base
                }
            }
        }

        mutating func parsePrimary() throws(ParseError) -> Expression {
            guard let token = peek else { throw ParseError(message: "the condition ends too early", column: end) }
            position += 1
            switch token.kind {
            case .number(let value): return .literal(.double(value))
            case .string(let value): return .literal(.string(value))
            case .word("result"): return .result
            case .word("true"): return .literal(.bool(true))
            case .word("false"): return .literal(.bool(false))
            case .word("null"): return .literal(.null)
            case .word(let other):
                throw ParseError(
                    message: "unknown name '\(other)' (only result, true, false, null)", column: token.column)
            case .symbol("("):
                let inner = try nested(at: token.column) { parser throws(ParseError) in try parser.parseOr() }
                guard take(")") else { throw ParseError(message: "expected ')'", column: peek?.column ?? end) }
                return inner
            case .symbol(let symbol):
                throw ParseError(message: "unexpected '\(symbol)'", column: token.column)
            }
        }
    }
}
