import Testing
import TideEngine
import TideManifest

@Suite("TideEngine: the condition language")
struct ConditionTests {
    static let result = JSONValue.object([
        "p99": .int(240), "errors": .int(3), "total": .int(200), "ok": .bool(true), "region": .string("eu"),
        "series": .array([.double(0.5), .double(0.7)]),
    ])

    @Test(
        "evaluates",
        arguments: [
            ("result.p99 <= 250", true), ("result.p99 > 250", false),
            ("result[\"errors\"] / result.total < 0.05", true), ("result.errors * 100 / result.total >= 1.5", true),
            ("result.ok && result.region == 'eu'", true), ("!(result.ok) || result.p99 < 100", false),
            ("result.series[1] - result.series[0] > 0.19", true), ("-result.p99 < 0", true),
            ("result.region != \"us\"", true), ("1 + 2 * 3 == 7", true), ("(1 + 2) * 3 == 9", true),
            ("result.errors == 3.0", true), ("2e2 == result.total", true),
        ])
    func evaluates(text: String, expected: Bool) throws {
        #expect(try Condition(text).evaluate(result: Self.result) == expected)
    }

    @Test("a bare number result", arguments: [("result < 0.01", 0.005, true), ("result >= 0.05", 0.01, false)])
    func number(text: String, value: Double, expected: Bool) throws {
        #expect(try Condition(text).evaluate(result: .double(value)) == expected)
    }

    @Test(
        "rejects what is not the language, naming the column",
        arguments: [
            ("result.p99 <", "the condition ends too early"), ("system('rm -rf /')", "unknown name 'system'"),
            ("result.p99 < 1 )", "unexpected ')'"), ("result = 1", "unexpected character '='"),
            ("'abc", "unterminated string"), ("result.", "expected a field name"),
        ])
    func rejects(text: String, message: String) {
        #expect {
            try Condition(text)
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("evaluation errors instead of guesses")
    func evaluationErrors() throws {
        #expect(throws: Condition.EvaluationError.self) {
            try Condition("result.missing > 1").evaluate(result: Self.result)
        }
        #expect(throws: Condition.EvaluationError.self) {
            try Condition("result.p99 + 1").evaluate(result: Self.result)
        }
        #expect(throws: Condition.EvaluationError.self) { try Condition("result / 0 > 1").evaluate(result: .int(1)) }
        #expect(throws: Condition.EvaluationError.self) {
            try Condition("result.series[5] > 1").evaluate(result: Self.result)
        }
        #expect(throws: Condition.EvaluationError.self) { try Condition("result < 1").evaluate(result: .null) }
    }
}
