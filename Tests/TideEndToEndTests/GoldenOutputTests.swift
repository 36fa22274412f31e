import Foundation
import Testing
import TideTestSupport

/// The JSON every read-only verb prints (`status`, `history`, `plan`, `dora`, `migrations`), on one fixed scenario,
/// compared byte for byte with the files in Golden/ — what scripts and the API rely on. Commit ids, digests and
/// paths differ from run to run and are replaced by placeholders in order of appearance; the wall clock is frozen
/// with faketime. `TIDE_UPDATE_GOLDEN=1 swift test --filter GoldenOutputTests` writes the files anew.
@Suite("End to end: the JSON of tide status, history, plan, dora and migrations is what it was")
struct GoldenOutputTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    /// Commit ids, config and executor digests (12 hex digits or more), each replaced by `<hex N>` where N
    /// numbers them by first appearance (a short id is its full id's first 12); the scratch directory by
    /// `$SCRATCH`; and durations, which depend on the machine, by 0.
    static func normalized(_ text: String, scratch: String) throws -> String {
        var text = text.replacingOccurrences(of: scratch, with: "$SCRATCH")
        // The state's install id (a UUID made with the state file), and rollout attempts in action ids.
        for (pattern, template) in [
            (#"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"#, "<install id>"),
            (#"\.([0-9a-f]{8})\.([0-9]+-)"#, ".<attempt>.$2"),
            // The clock is frozen at 10:00:00, but a second can tick in a long process: times to the minute.
            (#"2026-11-02T10:00:0[0-9]Z"#, "2026-11-02T10:00:00Z"), (#"179361360[0-9]"#, "1793613600"),
        ] {
            let expression = try NSRegularExpression(pattern: pattern)
            text = expression.stringByReplacingMatches(
                in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
        }
        var names: [String: Int] = [:]
        var result = ""
        var index = text.startIndex
        let hex = Set("0123456789abcdef")
        while index < text.endIndex {
            var end = index
            while end < text.endIndex, hex.contains(text[end]) { end = text.index(after: end) }
            let run = text[index..<end]
            let before = index == text.startIndex ? nil : text[text.index(before: index)]
            let boundary = before.map { !($0.isLetter || $0.isNumber) } ?? true
            // Ids and digests: 12 hex digits or more with a letter among them (a decimal number has none), or 40.
            // (A short commit id can be all digits: 12 exactly count too.)
            let id = run.count == 40 || run.count == 12 || run.contains { $0.isLetter }
            if run.count >= 12, id, boundary, end == text.endIndex || !(text[end].isLetter || text[end].isNumber) {
                let key = String(run.prefix(12))
                let number = names[key] ?? (names.count + 1)
                names[key] = number
                result += "<hex \(number)>"
                index = end
            } else if end > index {
                result += run
                index = end
            } else {
                result.append(text[index])
                index = text.index(after: index)
            }
        }
        text = result
        // "durationMilliseconds" : 12 → 0 (how long an action took on this machine).
        let pattern = try NSRegularExpression(
            pattern: #""(duration[A-Za-z]*|leadSeconds|medianSeconds|p90Seconds)" : [0-9.]+"#)
        return pattern.stringByReplacingMatches(
            in: text, range: NSRange(text.startIndex..., in: text), withTemplate: #""$1" : 0"#)
    }

    @Test("status, history, plan, dora and migrations print the JSON recorded in Golden/")
    func outputs() async throws {
        let faketime = "/usr/bin/faketime"
        try #require(FileManager.default.isExecutableFile(atPath: faketime), "faketime is needed: scripts/install-deps")
        let repo = try ConfigRepo()
        let db = repo.scratch.appending("orders.sqlite")
        _ = try await runProcess(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                    + "c.execute('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, legacy TEXT)'); c.commit()",
                db,
            ])
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await detached {
                try runProcess(
                    "/usr/bin/timeout",
                    ["60", faketime, "2026-11-02 10:00:00", TideBinary.path] + arguments + [
                        "--repo", repo.fixture.repoPath, "--state", repo.state,
                    ],
                    in: repo.scratch.path, environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
            }
        }
        let date = Date(timeIntervalSince1970: 1_793_000_000)
        // Every commit dated before the frozen clock (lead times are the same at every run).
        _ = try await runProcess(
            GitFixture.gitPath, ["commit", "-q", "--amend", "--no-edit", "--no-verify"], in: repo.fixture.workTree,
            environment: ["GIT_AUTHOR_DATE": "@1792990000 +0000", "GIT_COMMITTER_DATE": "@1792990000 +0000"])
        #expect(try await tide("reconcile").status == 0)
        try await repo.fixture.commit(
            "api 2.0.0 with a migration",
            files: [
                "db.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: orders-db}
                spec: {type: sql, url: "sqlite:\(db)"}
                ---
                apiVersion: tide/v1
                kind: Migration
                metadata: {name: add-email}
                spec:
                  executor: orders-db
                  expand: {up: ["ALTER TABLE users ADD COLUMN email TEXT"], down: ["ALTER TABLE users DROP COLUMN email"]}
                  contract: {up: ["ALTER TABLE users DROP COLUMN legacy"], after: 1h}

                """,
                "api.yaml": ConfigRepo.service("api", "2.0.0") + "  migrations: [add-email]\n",
            ], date: date)
        #expect(try await tide("reconcile").status == 0)
        // A batch job in a nightly environment: outside its window at 10:00, it waits (and says for what).
        try await repo.fixture.commit(
            "batch in a nightly environment",
            files: [
                "nightly.yaml": """
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: nightly}
                spec:
                  windows: [{days: [mon, tue, wed, thu, fri], start: "22:00", end: "23:00", timezone: UTC}]
                ---
                apiVersion: tide/v1
                kind: Service
                metadata: {name: batch}
                spec: {executor: script, version: "3.0.0", environments: {nightly: {}}}

                """
            ], date: date)
        #expect(try await tide("reconcile").status == 0)
        try await repo.fixture.commit(
            "web bad", files: ["web.yaml": ConfigRepo.service("web", "bad", dependsOn: "[api]")], date: date)
        #expect(try await tide("reconcile").status == 1)
        try await repo.fixture.commit(
            "api 2.1.0", files: ["api.yaml": ConfigRepo.service("api", "2.1.0") + "  migrations: [add-email]\n"],
            date: date)

        let outputs: [(String, [String])] = [
            ("status", ["status", "--json"]), ("history", ["history", "--json", "--all"]),
            ("plan", ["plan", "--json"]), ("dora", ["dora", "--json", "--from", "2026-10-03", "--to", "2026-11-03"]),
            ("migrations", ["migrations", "--json"]),
        ]
        let update = ProcessInfo.processInfo.environment["TIDE_UPDATE_GOLDEN"] == "1"
        for (name, arguments) in outputs {
            let output = try await detached {
                try runProcess(
                    "/usr/bin/timeout",
                    ["60", faketime, "2026-11-02 10:00:00", TideBinary.path] + arguments + [
                        "--repo", repo.fixture.repoPath, "--state", repo.state,
                    ],
                    in: repo.scratch.path, environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
            }
            let text = try Self.normalized(output.standardOutput, scratch: repo.scratch.path)
            let file = Self.golden.appendingPathComponent("\(name).json")
            if update {
                try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
                try text.write(to: file, atomically: true, encoding: .utf8)
                continue
            }
            let recorded = try String(contentsOf: file, encoding: .utf8)
            #expect(
                text == recorded, "tide \(arguments.joined(separator: " ")) differs from Golden/\(name).json:\n\(text)")
        }
    }
}
