import Foundation
import Testing
import TideTestSupport

/// The root of Tide's repository (manifests/, examples/, hooks/), from this file's place in it.
private let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// Runs `body` on a Dispatch thread: the examples' scripts take seconds, and a test must not hold one of the
/// cooperative pool's few threads that long (see `TideBinary.runDetached`).
private func detached<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}

/// The regular files under `directory`, as paths relative to it, sorted.
private func files(under directory: String) throws -> [String] {
    let root = URL(fileURLWithPath: directory).standardizedFileURL
    guard let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey])
    else { throw FixtureError("cannot list \(directory)") }
    var paths: [String] = []
    for case let url as URL in walk where try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true {
        paths.append(String(url.standardizedFileURL.path.dropFirst(root.path.count + 1)))
    }
    return paths.sorted()
}

private func git(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws
    -> ProcessOutput
{
    try runProcess(
        GitFixture.gitPath, ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + arguments, in: directory,
        environment: environment)
}

private func json(_ output: ProcessOutput) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))
}

/// `tide status --json`'s targets, by "service@environment".
private func targets(
    in directory: String, environment: [String: String] = [:]
) async throws -> [String: [String: Any]] {
    let status = try await TideBinary.runDetached(["status", "--json"], in: directory, environment: environment)
    let root = try #require(try json(status) as? [String: Any], "\(status.combined)")
    let list = try #require(root["targets"] as? [[String: Any]])
    var byName: [String: [String: Any]] = [:]
    for target in list {
        byName["\(target["service"] ?? "")@\(target["environment"] ?? "")"] = target
    }
    return byName
}

@Suite("End to end: tide init's templates, the pre-commit hook, and the examples people run")
struct ExamplesTests {
    static let templates = [
        ("demo", "manifests"), ("empty", "examples/empty/repo"), ("nginx-canary", "examples/nginx-canary/repo"),
        ("pipeline", "examples/promotion-pipeline/repo"),
    ]

    @Test(
        "tide init --template writes exactly the template's files, commits them, installs the hook, and validates",
        arguments: templates)
    func template(name: String, directory: String) async throws {
        let scratch = try TemporaryDirectory("tide-template")
        let dir = scratch.appending("config")
        let created = try await TideBinary.runDetached(["init", "--template", name, dir])
        #expect(created.status == 0, "\(created.combined)")

        // The embedded copy is the directory in this repository: same files, contents and executable bits.
        let source = repositoryRoot + "/" + directory
        let expected = try files(under: source)
        #expect(!expected.isEmpty)
        let committed = try git(["ls-files"], in: dir).standardOutput.split(separator: "\n").map(String.init).sorted()
        #expect(
            committed == expected, "tide init --template \(name) differs from \(directory): run scripts/embed-examples")
        for file in expected {
            let ours = try String(contentsOfFile: source + "/" + file, encoding: .utf8)
            let theirs = try? String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            #expect(theirs == ours, "\(file) differs from \(directory)/\(file): run scripts/embed-examples")
            #expect(
                FileManager.default.isExecutableFile(atPath: dir + "/" + file)
                    == FileManager.default.isExecutableFile(atPath: source + "/" + file), "\(file): executable bit")
        }
        #expect(try git(["status", "--porcelain"], in: dir).standardOutput.isEmpty, "everything is committed")
        #expect(try git(["rev-list", "--count", "HEAD"], in: dir).standardOutput == "1\n")

        // The hook is hooks/pre-commit as it is: no path of the build that ran init in it.
        let hook = dir + "/.git/hooks/pre-commit"
        #expect(FileManager.default.isExecutableFile(atPath: hook))
        let installed = try String(contentsOfFile: hook, encoding: .utf8)
        #expect(installed == (try String(contentsOfFile: repositoryRoot + "/hooks/pre-commit", encoding: .utf8)))
        #expect(!installed.contains(TideBinary.path))

        let validate = try await TideBinary.runDetached(["validate"], in: dir)
        #expect(validate.status == 0, "\(validate.combined)")
        #expect(validate.standardOutput.contains("valid"), "\(validate.combined)")
    }

    @Test("tide init --template with an unknown name is a usage error and creates nothing")
    func unknownTemplate() async throws {
        let scratch = try TemporaryDirectory("tide-template")
        let dir = scratch.appending("config")
        let refused = try await TideBinary.runDetached(["init", "--template", "kubernetes", dir])
        #expect(refused.status == 2, "\(refused.combined)")
        #expect(refused.standardError.contains("nginx-canary"), "names the templates there are: \(refused.combined)")
        #expect(!FileManager.default.fileExists(atPath: dir))
    }

    @Test("the installed pre-commit hook runs $TIDE, else tide from PATH, and refuses the commit when neither is there")
    func hookResolution() async throws {
        let scratch = try TemporaryDirectory("tide-hook")
        let dir = scratch.appending("config")
        #expect(try await TideBinary.runDetached(["init", "--template", "empty", dir]).status == 0)
        // A PATH with tide on it, and one without (git finds its own helpers through its exec path, not PATH).
        let withTide = scratch.appending("bin")
        let withoutTide = scratch.appending("empty-bin")
        try FileManager.default.createDirectory(atPath: withTide, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: withoutTide, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: withTide + "/tide", withDestinationPath: TideBinary.path)

        let valid = """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: web}
            spec:
              executor: deploy
              version: "VERSION"
              environments: {prod: {}}

            """
        func head() throws -> String { try git(["rev-parse", "HEAD"], in: dir).standardOutput }
        /// Stages services/web.yaml with `text` and commits it under `environment`.
        func commit(_ text: String, _ environment: [String: String]) throws -> ProcessOutput {
            try Data(text.utf8).write(to: URL(fileURLWithPath: dir + "/services/web.yaml"))
            #expect(try git(["add", "services/web.yaml"], in: dir).status == 0)
            return try git(["commit", "-q", "-m", "web"], in: dir, environment: environment)
        }
        let invalid = valid.replacingOccurrences(of: "executor: deploy", with: "executor: nowhere")
        try FileManager.default.createDirectory(atPath: dir + "/services", withIntermediateDirectories: true)

        // TIDE is emptied rather than left out: the test process's own environment may have one.
        let ways: [(String, [String: String])] = [
            ("tide on PATH", ["PATH": withTide, "TIDE": ""]),
            ("TIDE set to the binary", ["PATH": withoutTide, "TIDE": TideBinary.path]),
            ("TIDE set to a name on PATH", ["PATH": withTide, "TIDE": "tide"]),
        ]
        for (index, (way, environment)) in ways.enumerated() {
            let before = try head()
            let refused = try commit(invalid, environment)
            #expect(refused.status != 0, "\(way): an invalid commit is refused")
            #expect(
                refused.standardError.contains("services/web.yaml:5:")
                    && refused.standardError.contains("nowhere"), "\(way): \(refused.combined)")
            #expect(try head() == before, "\(way): nothing was committed")

            let accepted = try commit(valid.replacingOccurrences(of: "VERSION", with: "1.\(index).0"), environment)
            #expect(accepted.status == 0, "\(way): \(accepted.combined)")
            #expect(try head() != before, "\(way): the valid commit went in")
        }

        // Neither: the commit is refused, even a valid one, and the message says what to do.
        let before = try head()
        let missing = try commit(
            valid.replacingOccurrences(of: "VERSION", with: "9.0.0"), ["PATH": withoutTide, "TIDE": ""])
        #expect(missing.status != 0, "\(missing.combined)")
        #expect(missing.standardError.contains("tide was not found on PATH and TIDE is not set"), "\(missing.combined)")
        #expect(
            missing.standardError.contains("install tide on PATH, or set TIDE=/path/to/tide"), "\(missing.combined)")
        #expect(try head() == before)

        let wrong = try commit(
            valid.replacingOccurrences(of: "VERSION", with: "9.0.0"),
            ["PATH": withTide, "TIDE": scratch.appending("no-such-tide")])
        #expect(wrong.status != 0, "\(wrong.combined)")
        #expect(
            wrong.standardError.contains("TIDE=\(scratch.appending("no-such-tide")) is not an executable program"),
            "\(wrong.combined)")
        #expect(try head() == before)
    }

    @Test("examples/nginx-canary/run.sh: a canary through a real nginx to 100 %, a failing one rolled back")
    func nginxCanary() async throws {
        let scratch = try TemporaryDirectory("tide-example-nginx")
        let work = scratch.appending("work")
        var ports: Set<Int> = []
        while ports.count < 4 { ports.insert(try freeLoopbackPort()) }
        let port = Array(ports)
        // Whatever happens, nothing the script started outlives the test (it stops them itself; this checks).
        defer {
            let pids = (try? String(contentsOfFile: work + "/pids", encoding: .utf8)) ?? ""
            for pid in pids.split(separator: "\n").compactMap({ Int32($0) }) where kill(pid, 0) == 0 {
                Issue.record("process \(pid) the example started is still running")
                kill(pid, SIGTERM)
            }
        }
        let environment = [
            "TIDE": TideBinary.path, "NGINX_PORT": "\(port[0])", "V1_PORT": "\(port[1])", "V2_PORT": "\(port[2])",
            "V3_PORT": "\(port[3])",
        ]
        let script = repositoryRoot + "/examples/nginx-canary/run.sh"
        let run = try await detached { try runProcess("/bin/sh", [script, work], environment: environment) }
        #expect(run.status == 0, "\(run.combined)")
        let output = run.standardOutput
        // What the script measured through nginx, in order: 1.0.0, then the canary at 100 %, then stable again.
        let samples = output.split(separator: "\n").filter { $0.contains(" × HTTP ") }.map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        #expect(samples == ["20 × HTTP 200 1.0.0", "20 × HTTP 200 2.0.0", "20 × HTTP 200 2.0.0"], "\(run.combined)")
        #expect(output.contains("analysis through-nginx failed"), "\(run.combined)")

        let config = work + "/config"
        let shop = try #require(try await targets(in: config)["shop@prod"])
        #expect(shop["phase"] as? String == "RolledBack")
        #expect(shop["version"] as? String == "2.0.0")

        // 2.0.0 walked the steps: 20 %, an analysis that passed, 50 %, another, then promoted.
        let history = try await TideBinary.runDetached(
            ["history", "--all", "--service", "shop", "--limit", "500", "--json"], in: config)
        let events = try #require(try json(history) as? [[String: Any]])
        let canary = events.filter { $0["version"] as? String == "2.0.0" }.compactMap { $0["message"] as? String }
        for step in ["setWeight 20%", "setWeight 50%", "promote"] {
            #expect(canary.contains { $0.contains(step) }, "\(step) in \(canary)")
        }
        #expect(canary.filter { $0.contains("analysis through-nginx: passed") }.count == 2, "\(canary)")

        // Tide wrote git back after the rollback: a commit after "shop 3.0.0", and nothing left to do.
        let subjects = try git(["log", "--format=%s"], in: config).standardOutput.split(separator: "\n")
        let failed = try #require(subjects.firstIndex(of: "shop 3.0.0"))
        #expect(failed > 0, "a write-back commit follows the failed version: \(subjects)")
        let plan = try await TideBinary.runDetached(["plan", "--json"], in: config)
        let actions = try #require((try json(plan) as? [String: Any])?["actions"] as? [[String: Any]])
        #expect(actions.allSatisfy { $0["kind"] as? String == "none" }, "\(plan.standardOutput)")

        // nginx was left routing to 2.0.0's backend only.
        let include = try String(contentsOfFile: config + "/nginx/conf.d/tide-shop-prod.conf", encoding: .utf8)
        #expect(include.contains("127.0.0.1:\(port[2])") && !include.contains("127.0.0.1:\(port[3])"), "\(include)")
    }

    @Test("examples/promotion-pipeline: dev deploys, staging after the bake (faketime), prod after tide approve")
    func promotionPipeline() async throws {
        let faketime = "/usr/bin/faketime"
        try #require(FileManager.default.isExecutableFile(atPath: faketime), "faketime is needed: scripts/install-deps")
        let scratch = try TemporaryDirectory("tide-example-pipeline")
        let dir = scratch.appending("config")
        #expect(try await TideBinary.runDetached(["init", "--template", "pipeline", dir]).status == 0)
        func version(_ environment: String) -> String? {
            try? String(contentsOfFile: dir + "/deployments/\(environment)/web/current/VERSION", encoding: .utf8)
        }
        /// tide `offset` from now (`+2h`), as the README runs it (the monotonic clock stays real).
        func at(_ offset: String, _ arguments: [String]) throws -> ProcessOutput {
            try runProcess(
                faketime, ["-f", offset, TideBinary.path] + arguments, in: dir,
                environment: ["FAKETIME_DONT_FAKE_MONOTONIC": "1"])
        }
        func later(_ arguments: String...) throws -> ProcessOutput { try at("+2h", arguments) }

        let first = try await TideBinary.runDetached(["reconcile"], in: dir)
        #expect(first.status == 0, "\(first.combined)")
        #expect(first.standardOutput.contains("web@dev: deployed"), "\(first.combined)")
        #expect(first.standardOutput.contains("bakes in dev for 1h"), "\(first.combined)")
        #expect(version("dev") == "1.0.0\n")
        #expect(version("staging") == nil && version("prod") == nil)
        var now = try await targets(in: dir)
        #expect(now["web@staging"]?["state"] as? String == "waiting for bake")

        // Within the hour, nothing moves.
        let again = try await TideBinary.runDetached(["reconcile"], in: dir)
        #expect(again.status == 0, "\(again.combined)")
        #expect(version("staging") == nil)

        // Two hours on, the bake is over: staging deploys, prod waits for a person.
        let baked = try later("reconcile")
        #expect(baked.status == 0, "\(baked.combined)")
        #expect(baked.standardOutput.contains("web@staging: deployed"), "\(baked.combined)")
        #expect(baked.standardOutput.contains("tide approve web --env prod"), "\(baked.combined)")
        #expect(version("staging") == "1.0.0\n")
        #expect(version("prod") == nil)
        now = try await targets(in: dir)
        #expect(now["web@prod"]?["state"] as? String == "blocked by approval")

        let approved = try later("approve", "web", "--env", "prod", "--by", "alice")
        #expect(approved.status == 0, "\(approved.combined)")
        let released = try later("reconcile")
        #expect(released.status == 0, "\(released.combined)")
        #expect(released.standardOutput.contains("web@prod: deployed"), "\(released.combined)")
        #expect(version("prod") == "1.0.0\n")
        now = try await targets(in: dir)
        #expect(now.values.allSatisfy { $0["phase"] as? String == "Healthy" }, "\(now)")

        // A config-only change walks the same gates: dev at once, staging after dev's bake, prod after staging
        // and an approval of that config — the approval of 1.0.0 was for the old one.
        let service = dir + "/services/web.yaml"
        let text = try String(contentsOfFile: service, encoding: .utf8)
        try
            (text.replacingOccurrences(
                of: "  version: \"1.0.0\"\n", with: "  version: \"1.0.0\"\n  config: {replicas: 3}\n"))
            .write(toFile: service, atomically: true, encoding: .utf8)
        await #expect(
            try runProcess(
                GitFixture.gitPath,
                ["-c", "user.name=Dev", "-c", "user.email=dev@example.com", "commit", "-qam", "web: 3 replicas"],
                in: dir, environment: ["TIDE": TideBinary.path]
            ).status == 0)
        let configOnly = try later("reconcile")
        #expect(configOnly.status == 0, "\(configOnly.combined)")
        #expect(
            configOnly.standardOutput.contains("web@dev: deployed 1.0.0 → 1.0.0 [CONFIG]"), "\(configOnly.combined)")
        #expect(!configOnly.standardOutput.contains("web@staging: deployed"), "\(configOnly.combined)")
        #expect(!configOnly.standardOutput.contains("web@prod: deployed"), "\(configOnly.combined)")
        #expect(configOnly.standardOutput.contains("with this change's config"), "\(configOnly.combined)")
        let stagingNext = try at("+4h", ["reconcile"])
        #expect(
            stagingNext.standardOutput.contains("web@staging: deployed 1.0.0 → 1.0.0 [CONFIG]"),
            "\(stagingNext.combined)")
        #expect(!stagingNext.standardOutput.contains("web@prod: deployed"), "\(stagingNext.combined)")
        #expect(stagingNext.standardOutput.contains("was for another config"), "\(stagingNext.combined)")
        let approvedConfig = try at("+4h", ["approve", "web", "--env", "prod"])
        #expect(approvedConfig.status == 0, "\(approvedConfig.combined)")
        let prodNext = try at("+4h", ["reconcile"])
        #expect(prodNext.standardOutput.contains("web@prod: deployed 1.0.0 → 1.0.0 [CONFIG]"), "\(prodNext.combined)")
    }
}
