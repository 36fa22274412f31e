import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

/// `ExecutorReadiness` finds files as the executors do, and says what is missing and what to do.
@Suite("TideExecutors: what each built-in executor needs, checked on this machine")
struct ExecutorReadinessTests {
    let directory: TemporaryDirectory
    let readiness: ExecutorReadiness
    let target = ReadinessTarget(
        id: TargetID(service: "shop", environment: "prod"), version: "1.0.0", stable: nil, config: .object([:]))

    init() throws {
        directory = try TemporaryDirectory("tide-readiness")
        readiness = ExecutorReadiness(workingDirectory: directory.path)
    }

    func executor(_ type: ExecutorManifest.ExecutorType, command: [String] = [], env: [String: String] = [:])
        -> ExecutorManifest
    {
        ExecutorManifest(
            name: "x", location: SourceLocation(file: "x.yaml", line: 1, column: 1), type: type, command: command,
            environment: env)
    }

    func write(_ path: String, _ text: String, mode: Int = 0o644) throws {
        let full = directory.appending(path)
        try FileManager.default.createDirectory(
            atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: full))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
    }

    @Test("http: its secrets can be read and its caFile exists; a secret's value is never shown")
    func http() async throws {
        var spec = HTTPExecutorSpec(url: "https://deploy.internal/tide?team=payments")
        spec.headers = ["Authorization": .secret(.environment("TIDE_TEST_READINESS_TOKEN"))]
        spec.secret = .environment("TIDE_TEST_READINESS_KEY")
        spec.caFile = "certs/ca.pem"
        let manifest = ExecutorManifest(
            name: "x", location: SourceLocation(file: "x.yaml", line: 1, column: 1), kind: .http(spec))
        unsetenv("TIDE_TEST_READINESS_TOKEN")
        setenv("TIDE_TEST_READINESS_KEY", "k3y-value", 1)
        let missing = try #require(await readiness.checks(manifest, for: target).first)
        #expect(!missing.pass)
        #expect(missing.detail.contains("TIDE_TEST_READINESS_TOKEN"), "\(missing.detail)")
        #expect(missing.detail.contains("cannot read caFile \(directory.path)/certs/ca.pem"), "\(missing.detail)")
        setenv("TIDE_TEST_READINESS_TOKEN", "t0ken-value", 1)
        try write("certs/ca.pem", "-----BEGIN CERTIFICATE-----\n")
        let ready = try #require(await readiness.checks(manifest, for: target).first)
        #expect(ready.pass, "\(ready.detail)")
        #expect(
            ready.detail == "x (http): POST https://deploy.internal/tide?team=payments (signed, 2 secret(s) readable)")
        #expect(!ready.detail.contains("t0ken") && !ready.detail.contains("k3y"))
    }

    @Test("command and plugin: a relative program in the work tree, a name on the executor's PATH, what is missing")
    func programs() async throws {
        try write("bin/deploy", "#!/bin/sh\n", mode: 0o755)
        try write("tools/plug", "#!/bin/sh\n", mode: 0o755)
        try write("bin/stale", "#!/bin/sh\n")
        let relative = await readiness.checks(executor(.command, command: ["./bin/deploy"]), for: target)
        #expect(
            relative == [
                ReadinessCheck(
                    name: "executor program", pass: true,
                    detail: "x (command): ./bin/deploy is \(directory.path)/bin/deploy, executable")
            ])
        let onPath = await readiness.checks(
            executor(.plugin, command: ["plug", "--serve"], env: ["PATH": "/nowhere:\(directory.path)/tools"]),
            for: target)
        #expect(
            onPath.first?.detail
                == "x (plugin): plug is \(directory.path)/tools/plug, executable; it starts at the first action")
        let missing = await readiness.checks(executor(.command, command: ["./bin/missing"]), for: target)
        #expect(missing.first?.pass == false)
        #expect(
            missing.first?.detail
                == "x (command): \(directory.path)/bin/missing does not exist: commit it at ./bin/missing in the "
                + "config repo (its work tree is \(directory.path)) or fix spec.command")
        let notExecutable = await readiness.checks(executor(.command, command: ["bin/stale"]), for: target)
        #expect(
            notExecutable.first?.detail
                == "x (command): \(directory.path)/bin/stale is not executable: chmod +x it (in git: git "
                + "update-index --chmod=+x)")
        let notOnPath = await readiness.checks(
            executor(.command, command: ["no-such-tool"], env: ["PATH": "/nowhere"]), for: target)
        #expect(
            notOnPath.first?.detail
                == "x (command): no-such-tool is not on PATH (/nowhere): install it, or give its full path in "
                + "spec.command (or PATH in spec.env)")
    }

    @Test("flags: a file to be created, a file tide cannot update")
    func flags() async throws {
        var flags = executor(.flags)
        flags.path = "out/flags/now.json"
        let fresh = await readiness.checks(flags, for: target)
        #expect(
            fresh == [
                ReadinessCheck(
                    name: "executor flags file", pass: true,
                    detail: "x (flags): \(directory.path)/out/flags/now.json does not exist yet; the first action "
                        + "creates it (and \(directory.path)/out/flags) in \(directory.path), which is writable")
            ])
        try write("out/flags/now.json", "not json")
        let garbage = await readiness.checks(flags, for: target)
        #expect(garbage.first?.pass == false)
        #expect(
            garbage.first?.detail.hasPrefix(
                "x (flags): \(directory.path)/out/flags/now.json is not a flags file tide can update (") == true)
        try write("out/flags/now.json", #"{"format": "tide-flags/v1", "hash": "h", "targets": {}}"#)
        let good = await readiness.checks(flags, for: target)
        #expect(
            good.first?.detail
                == "x (flags): \(directory.path)/out/flags/now.json (tide-flags/v1, 0 targets), in a writable directory"
        )
    }

    @Test("sql on SQLite: the directory must exist; the file is created by the first migration")
    func sqlite() async throws {
        var sql = executor(.sql)
        sql.database = DatabaseSpec(url: try DatabaseURL(parsing: "sqlite:data/app.sqlite"))
        let missing = await readiness.database(sql, environment: "prod")
        #expect(
            missing
                == ReadinessCheck(
                    name: "migration database", pass: false,
                    detail: "x (sql, prod): sqlite:\(directory.path)/data/app.sqlite: its directory "
                        + "\(directory.path)/data does not exist: create it (SQLite does not)"))
        try FileManager.default.createDirectory(atPath: directory.appending("data"), withIntermediateDirectories: true)
        let ready = await readiness.database(sql, environment: "prod")
        #expect(ready.pass)
        #expect(
            ready.detail
                == "x (sql, prod): sqlite:\(directory.path)/data/app.sqlite does not exist yet; the first migration creates it"
        )
    }

    @Test("sql on PostgreSQL: a real connection, and a refused one")
    func postgres() async throws {
        let database = try SQLDatabaseFixture(.postgres)
        var sql = executor(.sql)
        sql.database = DatabaseSpec(url: try DatabaseURL(parsing: database.url))
        let connected = await readiness.database(sql, environment: "prod")
        #expect(connected.pass, "\(connected.detail)")
        #expect(connected.detail.hasPrefix("x (sql, prod): connected to postgres://"))
        let port = try freeLoopbackPort()
        sql.database = DatabaseSpec(url: try DatabaseURL(parsing: "postgres://tide@127.0.0.1:\(port)/none"))
        let refused = await readiness.database(sql, environment: "prod")
        #expect(!refused.pass)
        #expect(refused.detail.hasPrefix("x (sql, prod): postgres://tide@127.0.0.1:\(port)/none: cannot connect: "))
        #expect(refused.detail.hasSuffix("check that the server runs and answers here, and the URL, user and password"))
    }
}
