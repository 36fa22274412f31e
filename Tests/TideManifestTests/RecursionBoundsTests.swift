import Foundation
import Testing

@testable import TideManifest

/// Input that would recurse without bound is an error (conditions) or handled iteratively (dependency graphs):
/// never a stack overflow.
@Suite("TideManifest: no input recurses without bound")
struct RecursionBoundsTests {
    @Test("conditions: 20,000 parentheses, a million '!', deep brackets — errors with a column, no crash")
    func conditions() {
        let cases: [(String, String)] = [
            (String(repeating: "(", count: 20_000) + "true" + String(repeating: ")", count: 20_000), "at most 1000"),
            (String(repeating: "!", count: 1_000_000) + "true", "at most 1000"),
            (String(repeating: "(", count: 40) + "true" + String(repeating: ")", count: 40), "nested more than 32"),
            (String(repeating: "!", count: 40) + "true", "nested more than 32"),
            (String(repeating: "-", count: 40) + "1 < 0", "nested more than 32"),
            (
                String(repeating: "result[", count: 40) + "0" + String(repeating: "]", count: 40),
                "nested more than 32"
            ),
        ]
        for (text, message) in cases {
            do {
                _ = try Condition(text)
                Issue.record("\(text.prefix(20))… was accepted")
            } catch {
                #expect(error.message.contains(message), "\(error)")
                #expect(error.column > 0)
            }
        }
        // Within the bounds it still works.
        let ok = String(repeating: "(", count: 30) + "!!true" + String(repeating: ")", count: 30)
        #expect(throws: Never.self) { try Condition(ok) }
        #expect((try? Condition(ok).evaluate(result: .null)) == true)
        let long = (0..<300).map { _ in "1" }.joined(separator: "+") + " == 300"
        #expect((try? Condition(long).evaluate(result: .null)) == true)
    }

    @Test("dependsOn: a chain of 50,000 services and a cycle of 30,000 are checked without recursion")
    func graphs() {
        let here = TideManifest.SourceLocation(file: "s.yaml", line: 1, column: 1)
        var chain: [String: [(String, TideManifest.SourceLocation)]] = [:]
        for n in 0..<50_000 { chain["s\(n)"] = n == 0 ? [] : [("s\(n - 1)", here)] }
        #expect(DesiredStateBuilder.cycles(in: chain, kind: "Service", field: "spec.dependsOn").isEmpty)
        let order = DesiredStateBuilder.topologicalOrder(chain.mapValues { edges in edges.map { $0.0 } })
        #expect(order.count == 50_000 && order.first == "s0" && order.last == "s49999")

        var cycle: [String: [(String, TideManifest.SourceLocation)]] = [:]
        for n in 0..<30_000 { cycle["c\(n)"] = [("c\((n + 1) % 30_000)", here)] }
        let found = DesiredStateBuilder.cycles(in: cycle, kind: "Service", field: "spec.dependsOn")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("(29990 more)") == true, "\(found.first?.message.prefix(300) ?? "")")
        #expect((found.first?.message.count ?? 0) < 400)
    }
}
