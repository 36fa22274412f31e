import Foundation
import Testing
import TideGit
import TideTestSupport

@Suite("End to end: the tide binary against real git repositories")
struct EndToEndTests {
    @Test("first deploy, no-op second pass, version change, revert classified as rollback")
    func lifecycle() async throws {
        let repo = try ConfigRepo()
        let first = try await repo.tide("reconcile")
        #expect(first.status == 0, "\(first.combined)")
        #expect(
            repo.calls() == [
                "deploy api@prod 1.0.0", "health api@prod 1.0.0", "deploy web@prod 1.0.0", "health web@prod 1.0.0",
            ])
        #expect(first.standardOutput.contains("web@prod: deployed - → 1.0.0 [FEATURE]"))

        let second = try await repo.tide("reconcile")
        #expect(second.status == 0)
        #expect(repo.calls().count == 4, "a second pass must not call the executor")
        #expect(second.standardOutput.contains("2 unchanged"))

        let bump = try await repo.fixture.commit(
            "web 1.1.0", files: ["web.yaml": ConfigRepo.service("web", "1.1.0", dependsOn: "[api]")])
        let third = try await repo.tide("reconcile")
        #expect(third.status == 0)
        #expect(Array(repo.calls().suffix(2)) == ["deploy web@prod 1.1.0", "health web@prod 1.1.0"])

        let revert = try await repo.fixture.revert(bump)
        let fourth = try await repo.tide("reconcile")
        #expect(fourth.status == 0)
        #expect(Array(repo.calls().suffix(2)) == ["deploy web@prod 1.0.0", "health web@prod 1.0.0"])
        #expect(fourth.standardOutput.contains("[ROLLBACK]"))

        let history = try await repo.tide("history", "--json", "--service", "web")
        let events = try #require(try repo.json(history) as? [[String: Any]])
        let latest = try #require(events.first { $0["kind"] as? String == "deployment.succeeded" })
        #expect(latest["classification"] as? String == "ROLLBACK")
        #expect(latest["version"] as? String == "1.0.0")
        #expect(latest["previousVersion"] as? String == "1.1.0")
        #expect(latest["revision"] as? String == revert.hex)

        let status = try await repo.tide("status", "--json")
        let object = try #require(try repo.json(status) as? [String: Any])
        #expect(object["lastGoodRevision"] as? String == revert.hex)
        let targets = try #require(object["targets"] as? [[String: Any]])
        #expect(
            targets.map { "\($0["service"]!)=\($0["version"]!)/\($0["phase"]!)" }.sorted() == [
                "api=1.0.0/Healthy", "web=1.0.0/Healthy",
            ])
    }

    @Test("tide dora reports from what tide did, in a table, JSON and the Prometheus format")
    func dora() async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("dora", "--json").status == 0)
        _ = try await repo.tide("reconcile")
        let bump = try await repo.fixture.commit(
            "web 1.1.0", files: ["web.yaml": ConfigRepo.service("web", "1.1.0", dependsOn: "[api]")])
        _ = try await repo.tide("reconcile")
        try await repo.fixture.revert(bump)
        _ = try await repo.tide("reconcile")

        let json = try await repo.tide("dora", "--json")
        #expect(json.status == 0, "\(json.combined)")
        let report = try #require(try repo.json(json) as? [String: Any])
        #expect(report["deployments"] as? Int == 4)
        let failure = try #require(report["changeFailureRate"] as? [String: Any])
        #expect(failure["failed"] as? Int == 1)
        #expect(failure["value"] as? Double == 0.25)
        #expect((report["reworkRate"] as? [String: Any])?["value"] as? Double == 0.25)
        #expect((report["leadTime"] as? [String: Any])?["medianSeconds"] is Double)
        #expect((report["window"] as? [String: Any])?["from"] is String)
        // The previous window had nothing: its values are null, not 0.
        let previous = try #require(report["previous"] as? [String: Any])
        #expect((previous["leadTime"] as? [String: Any])?["medianSeconds"] is NSNull)

        let table = try await repo.tide("dora")
        #expect(table.standardOutput.contains("Change failure rate              25.0% (1 failed)"))
        #expect(table.standardOutput.contains("warning: only 4 deployment(s)"))

        let prometheus = try await repo.tide("dora", "--format", "prometheus", "--env", "prod")
        #expect(
            prometheus.standardOutput.contains(#"tide_dora_change_failure_rate{environment="prod",service="all"} 0.25"#)
        )
        #expect(prometheus.standardOutput.contains("# TYPE tide_dora_lead_time_seconds gauge"))

        let scoped = try await repo.tide("dora", "--json", "--service", "api")
        #expect((try repo.json(scoped) as? [String: Any])?["deployments"] as? Int == 1)

        let history = try await repo.tide("history", "--json", "--service", "web")
        let events = try #require(try repo.json(history) as? [[String: Any]])
        let finished = events.filter { $0["kind"] as? String == "deployment.succeeded" }
        #expect(finished.map { $0["countedFailed"] as? Bool } == [false, true, false])
        #expect((finished[1]["failureReason"] as? String)?.hasPrefix("reverted by") == true)

        #expect(try await repo.tide("dora", "--since", "3x").status == 2)
        #expect(try await repo.tide("dora", "--since", "7d", "--from", "2026-01-01").status == 2)
        #expect(try await repo.tide("dora", "--from", "2026-02-01", "--to", "2026-01-01").status == 2)
        #expect(try await repo.tide("dora", "--from", "2020-01-01", "--to", "2020-02-01", "--json").status == 0)
    }

    @Test("staging → prod through the CLI: readiness, approve, promote --to, status words")
    func promotionFlow() async throws {
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "pipeline",
            files: [
                "envs.yaml": """
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: staging}
                spec: {}
                ---
                apiVersion: tide/v1
                kind: Environment
                metadata: {name: live}
                spec: {requires: [staging], approval: manual}

                """,
                "api.yaml": ConfigRepo.service("api", "1.0.0").replacingOccurrences(
                    of: "environments: {prod: {}}",
                    with: "environments: {prod: {}, staging: {version: \"2.0.0\"}, live: {}}"),
            ])
        let first = try await repo.tide("reconcile")
        #expect(first.status == 0, "\(first.combined)")
        #expect(
            first.standardOutput.contains(
                "api@live: waiting 1.0.0 [FEATURE]: api@staging must run 1.0.0 healthy first; it runs 2.0.0 (Healthy)"))

        let notReady = try await repo.tide("readiness", "api", "--env", "live")
        #expect(notReady.status == 1)
        #expect(notReady.standardOutput.contains("previous environments healthy and baked  FAIL"))
        #expect(notReady.standardOutput.contains("approvals present                        FAIL"))
        #expect(notReady.standardOutput.contains("NOT READY"))

        let promote = try await repo.tide("promote", "api", "--to", "live")
        #expect(promote.status == 0, "\(promote.combined)")
        #expect(promote.standardOutput.contains("api 2.0.0 in live (api.yaml), from staging"))
        let text = try String(contentsOfFile: repo.fixture.workTree + "/api.yaml", encoding: .utf8)
        #expect(text.contains("live: {version: \"2.0.0\"}"))

        _ = try await repo.tide("reconcile")
        let status = try await repo.tide("status", "--json")
        let targets = (try repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]]
        let live = try #require(targets?.first { $0["environment"] as? String == "live" })
        #expect(live["state"] as? String == "blocked by approval")
        #expect((live["waiting"] as? String)?.contains("tide approve api --env live --version 2.0.0") == true)

        let approve = try await repo.tide("approve", "api", "--env", "live", "--by", "Dana <dana@example.com>")
        #expect(approve.status == 0, "\(approve.combined)")
        // The record names the user running tide; --by is only a comment (it cannot impersonate anyone).
        #expect(approve.standardOutput.contains("approved api 2.0.0 (config "), "\(approve.combined)")
        #expect(approve.standardOutput.contains("for live (by \(NSUserName()))"), "\(approve.combined)")
        let approvals = try await repo.tide("history", "--json", "--env", "live", "--all")
        let granted = (try repo.json(approvals) as? [[String: Any]])?.first {
            $0["kind"] as? String == "approval.granted"
        }
        let details = granted?["details"] as? [String: Any]
        #expect(details?["by"] as? String == NSUserName())
        #expect(details?["comment"] as? String == "for Dana <dana@example.com>")
        #expect((details?["configDigest"] as? String)?.count == 40)
        let ready = try await repo.tide("readiness", "api", "--env", "live", "--json")
        let checks = (try repo.json(ready) as? [String: Any])?["checks"] as? [[String: Any]]
        #expect(checks?.first { $0["name"] as? String == "approvals present" }?["pass"] as? Bool == true)

        let deploy = try await repo.tide("reconcile")
        #expect(deploy.standardOutput.contains("api@live: deployed - → 2.0.0"))
        let history = try await repo.tide("history", "--json", "--env", "live", "--all")
        let kinds = (try repo.json(history) as? [[String: Any]])?.compactMap { $0["kind"] as? String } ?? []
        #expect(kinds.contains("approval.granted"))
        #expect(kinds.contains("promotion.committed"))
        #expect(kinds.contains("gate.waiting"))

        #expect(try await repo.tide("promote", "api", "--to", "nowhere").status == 1)
        #expect(try await repo.tide("promote", "api").status == 2)
    }

    @Test("tide rollback writes the revert; automatic rollback with writeBack keeps git in step")
    func rollback() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        try await repo.fixture.commit(
            "web 1.1.0", files: ["web.yaml": ConfigRepo.service("web", "1.1.0", dependsOn: "[api]")])
        _ = try await repo.tide("reconcile")
        let rollback = try await repo.tide("rollback", "web", "--env", "prod", "--reconcile")
        #expect(rollback.status == 0, "\(rollback.combined)")
        #expect(rollback.standardOutput.contains("web@prod: deployed 1.1.0 → 1.0.0"))
        #expect(try await repo.fixture.git("log", "-1", "--format=%s") == "Revert \"web 1.1.0\"\n")
        #expect(try await repo.tide("rollback", "api", "--env", "prod").status == 1)

        let auto = ConfigRepo.service("api", "bad").replacingOccurrences(
            of: "  executor: script\n", with: "  executor: script\n  rollback: {automatic: true, writeBack: revert}\n")
        try await repo.fixture.commit("api bad", files: ["api.yaml": auto])
        let failed = try await repo.tide("reconcile")
        #expect(failed.status == 1)
        #expect(failed.standardError.contains("rolled back to 1.0.0 automatically; reverted "))
        #expect(failed.standardError.contains("so git says what runs"))
        #expect(
            Array(repo.calls().suffix(3)) == [
                "deploy api@prod bad", "rollback api@prod 1.0.0", "health api@prod 1.0.0",
            ])
        #expect(try await repo.fixture.git("log", "-1", "--format=%s") == "Revert \"api bad\"\n")
        let settled = try await repo.tide("reconcile")
        #expect(settled.status == 0, "\(settled.combined)")
        let status = try await repo.tide("status")
        #expect(status.standardOutput.contains("RolledBack  rolled back"))
    }

    @Test("a canary through the CLI: reconcile --watch sleeps through a timed pause, promote --env ends it")
    func canary() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        let canary = { (version: String) in
            ConfigRepo.service("api", version).replacingOccurrences(
                of: "  executor: script\n",
                with:
                    "  executor: script\n  strategy: {type: canary, steps: [{setWeight: 20}, {pause: 1s}, {setWeight: 60}, {pause: {}}]}\n"
            )
        }
        try await repo.fixture.commit("canary", files: ["api.yaml": canary("1.0.0")])
        _ = try await repo.tide("reconcile")
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": canary("2.0.0")])
        let watched = try await repo.tide("reconcile", "--watch")
        #expect(watched.status == 0, "\(watched.combined)")
        #expect(watched.standardOutput.contains("next pass at"))
        #expect(
            watched.standardOutput.contains(
                "api@prod: progressing 2.0.0 [FEATURE]: step 4/4: pause at weight 60, waiting for tide promote api --env prod"
            ))
        let status = try await repo.tide("status", "--json")
        let api = ((try repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]])?.first {
            $0["service"] as? String == "api"
        }
        #expect(api?["state"] as? String == "in progress")
        #expect((api?["rollout"] as? [String: Any])?["weight"] as? Int == 60)

        let promoted = try await repo.tide("promote", "api", "--env", "prod")
        #expect(promoted.status == 0, "\(promoted.combined)")
        #expect(promoted.standardOutput.contains("api@prod: deployed"))
        #expect(Array(repo.calls().suffix(2)) == ["promote api@prod 2.0.0", "health api@prod 2.0.0"])
        #expect(try await repo.tide("pause", "api", "--env", "prod").status == 1)
        #expect(try await repo.tide("promote", "api", "--env", "prod", "--to", "prod").status == 2)
    }

    @Test("kill -9 in the middle of a canary, then a restart: no completed step runs twice")
    func killNine() async throws {
        let repo = try ConfigRepo()
        let canary = { (version: String) in
            ConfigRepo.service("api", version).replacingOccurrences(
                of: "  executor: script\n",
                with: "  executor: script\n  strategy: {type: canary, steps: [{setWeight: 25}, {setWeight: 75}]}\n")
        }
        // A long executor timeout: the held step must still be running when the kill comes, however slow the
        // machine is.
        let base = try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
            .replacingOccurrences(of: "timeout: 2s", with: "timeout: 120s")
        try await repo.fixture.commit("canary", files: ["api.yaml": canary("1.0.0"), "base.yaml": base])
        _ = try await repo.tide("reconcile")
        try await repo.fixture.commit("api 2.0.0", files: ["api.yaml": canary("2.0.0")])
        try Data().write(to: URL(fileURLWithPath: repo.log + ".hold-weights"))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: TideBinary.path)
        process.arguments = ["reconcile", "--repo", repo.fixture.repoPath, "--state", repo.state]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        for _ in 0..<600 where !repo.calls().contains("set-weight api@prod 2.0.0") {
            try await Task.sleep(for: .milliseconds(50))
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        try Data().write(to: URL(fileURLWithPath: repo.log + ".release"))
        try FileManager.default.removeItem(atPath: repo.log + ".hold-weights")

        let restarted = try await repo.tide("reconcile")
        #expect(restarted.status == 0, "\(restarted.combined)")
        let lines = ((try? String(contentsOfFile: repo.log, encoding: .utf8)) ?? "").split(separator: "\n")
            .filter { $0.contains("2.0.0") }.map(String.init)
        let actions = lines.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(actions == ["deploy", "health", "set-weight", "set-weight", "set-weight", "promote", "health"])
        // The interrupted step ran again with the same idempotency key; deploy and health did not run again.
        let weightIDs = lines.filter { $0.hasPrefix("set-weight") }.map {
            $0.split(separator: " ").last.map(String.init) ?? ""
        }
        #expect(weightIDs[0] == weightIDs[1])
        #expect(weightIDs[1] != weightIDs[2])
        let status = try await repo.tide("status", "--json")
        let api = ((try repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]])?.first {
            $0["service"] as? String == "api"
        }
        #expect(api?["version"] as? String == "2.0.0")
        #expect(api?["phase"] as? String == "Healthy")
    }

    @Test("plan --format markdown renders the rollout plan people review")
    func markdownPlan() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        try await repo.fixture.commit(
            "canary with analysis",
            files: [
                "analysis.yaml": """
                apiVersion: tide/v1
                kind: Analysis
                metadata: {name: errors}
                spec:
                  count: 3
                  interval: 2m
                  metrics:
                    - name: error-rate
                      provider: {command: {command: ["/bin/echo", "0"]}}
                      successCondition: "result < 0.01"

                """,
                "api.yaml": ConfigRepo.service("api", "2.0.0").replacingOccurrences(
                    of: "  executor: script\n",
                    with:
                        "  executor: script\n  strategy: {type: canary, steps: [{setWeight: 20}, {analysis: errors}, {pause: {}}]}\n"
                ),
            ])
        let plan = try await repo.tide("plan", "--format", "markdown")
        #expect(plan.status == 0, "\(plan.combined)")
        let text = plan.standardOutput
        #expect(text.contains("| api@prod | 1.0.0 → 2.0.0 | FEATURE | MEDIUM | deploy |"))
        #expect(
            text.contains(
                "| 3. set-weight | send 20 % of traffic to the candidate | exit 0 | step fails → `rollback` to stable |"
            ))
        #expect(
            text.contains(
                "| 4. analysis errors | 3 × every 2m; more than 0 failed → rollback | error-rate: success if `result < 0.01` |"
            ))
        #expect(text.contains("| 5. pause | wait for a person | `tide promote` | `tide abort` |"))
        #expect(text.contains("Rollback plan: `tide rollback api --env prod`"))
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var file: String
        var contents: String
        var expected: String
        var testDescription: String { name }
    }

    static let invalid: [Invalid] = [
        Invalid(
            name: "YAML error", file: "web.yaml", contents: "apiVersion: tide/v1\nkind: Service\n  metadata: x: y\n",
            expected: "web.yaml:3:"),
        Invalid(
            name: "unknown field", file: "web.yaml",
            contents: ConfigRepo.service("web", "2.0.0").replacingOccurrences(
                of: "  executor:", with: "  replicas: 3\n  executor:"),
            expected: "web.yaml:5:3: Service 'web': spec: unknown field 'replicas'"),
        Invalid(
            name: "missing reference", file: "web.yaml",
            contents: ConfigRepo.service("web", "2.0.0", dependsOn: "[db]"),
            expected: "web.yaml:8:15: Service 'web': spec.dependsOn: service 'db' is not defined"),
        Invalid(
            name: "duplicate name", file: "web2.yaml", contents: ConfigRepo.service("web", "2.0.0"),
            expected: "web2.yaml:3:18: duplicate Service 'web' (first defined at web.yaml:3:18)"),
        Invalid(
            name: "dependsOn cycle", file: "api.yaml", contents: ConfigRepo.service("api", "2.0.0", dependsOn: "[web]"),
            expected: "dependency cycle: api → web → api"),
        Invalid(
            name: "wrong type", file: "web.yaml",
            contents: ConfigRepo.service("web", "2.0.0").replacingOccurrences(
                of: "environments: {prod: {}}", with: "environments: [prod]"),
            expected:
                "web.yaml:7:17: Service 'web': spec.environments: expected a mapping of environment names, found a list"
        ),
    ]

    @Test("an invalid commit is rejected whole, with path:line:column, and nothing changes", arguments: invalid)
    func rejected(_ case_: Invalid) async throws {
        let repo = try ConfigRepo()
        #expect(try await repo.tide("reconcile").status == 0)
        let good = try await repo.fixture.head()
        // A valid change rides along with the invalid one: it must not be applied either.
        try repo.fixture.write("api.yaml", ConfigRepo.service("api", "9.9.9"))
        let bad = try await repo.fixture.commit("broken", files: [case_.file: case_.contents])

        let validate = try await repo.tide("validate")
        #expect(validate.status == 1)
        #expect(validate.standardError.contains(case_.expected), "\(validate.standardError)")

        let reconcile = try await repo.tide("reconcile")
        #expect(reconcile.status == 1)
        #expect(reconcile.standardError.contains(case_.expected), "\(reconcile.standardError)")
        #expect(repo.calls().count == 4, "no executor call for a rejected revision")

        let status = try await repo.tide("status")
        #expect(status.standardOutput.contains("Applied:        \(good.short)"))
        #expect(status.standardOutput.contains("Rejected:       \(bad.short)"))
        let history = try await repo.tide("history", "--json", "--limit", "1")
        let latest = try #require((try repo.json(history) as? [[String: Any]])?.first)
        #expect(latest["kind"] as? String == "revision.rejected")
        #expect(latest["revision"] as? String == bad.hex)
        let live = try #require(try repo.json(try await repo.tide("status", "--json")) as? [String: Any])
        let versions = (live["targets"] as? [[String: Any]])?.compactMap { $0["version"] as? String }
        #expect(versions == ["1.0.0", "1.0.0"])
    }

    @Test("an executor that exits non-zero leaves a failed event and a clear status")
    func executorFailure() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        try await repo.fixture.commit("bad", files: ["api.yaml": ConfigRepo.service("api", "bad")])
        let result = try await repo.tide("reconcile")
        #expect(result.status == 1)
        #expect(result.standardError.contains("api@prod: failed 1.0.0 → bad"))
        #expect(result.standardError.contains("exited with status 4: cannot pull image bad"))
        #expect(!result.standardError.contains("web@prod"), "web did not change, so nothing blocks it")
        let status = try await repo.tide("status")
        #expect(status.standardOutput.contains("Failed"))
        #expect(status.standardOutput.contains("failed bad: deploy of bad exited with status 4: cannot pull image bad"))
        let history = try await repo.tide("history", "--all", "--json", "--service", "api", "--limit", "5")
        let events = try #require(try repo.json(history) as? [[String: Any]])
        #expect(events.first?["kind"] as? String == "deployment.failed")
        let step = try #require(events.first { $0["kind"] as? String == "step.failed" })
        let details = try #require(step["details"] as? [String: Any])
        #expect(details["stderr"] as? String == "cannot pull image bad\n")
        // Held until desired state changes: no retry on the next pass.
        let calls = repo.calls().count
        #expect(try await repo.tide("reconcile").status == 1)
        #expect(repo.calls().count == calls)
    }

    @Test("an executor's open circuit breaker is shown by tide status, in text and JSON")
    func circuitBreakerInStatus() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        let base = try String(contentsOfFile: repo.fixture.repoPath + "/base.yaml", encoding: .utf8)
        // The executor says it cannot work now (exit 75): what a breaker counts (a candidate's own failure is not).
        try await repo.fixture.commit(
            "busy",
            files: [
                "api.yaml": ConfigRepo.service("api", "busy"),
                "base.yaml": base.replacingOccurrences(
                    of: "  timeout: 2s\n",
                    with: "  timeout: 2s\n  retry: {limit: 0}\n  circuitBreaker: {failureThreshold: 1, coolDown: 10m}\n"
                ),
            ])
        #expect(try await repo.tide("reconcile").status == 0)
        let text = try await repo.tide("status").standardOutput
        #expect(text.contains("Executor:  script: circuit open until"), "\(text)")
        #expect(text.contains("1 failure in a row; last: deploy exited with status 75"), "\(text)")
        let json = try #require(try repo.json(try await repo.tide("status", "--json")) as? [String: Any])
        let executors = try #require(json["executors"] as? [[String: Any]])
        #expect(executors.first?["executor"] as? String == "script")
        #expect(executors.first?["circuit"] as? String == "open")
        #expect(executors.first?["consecutiveFailures"] as? Int == 1)
    }

    @Test("an executor that outlives its timeout is killed, retried as a transient failure, and the target waits")
    func executorTimeout() async throws {
        let repo = try ConfigRepo()
        _ = try await repo.tide("reconcile")
        let base = try String(contentsOfFile: repo.fixture.repoPath + "/base.yaml", encoding: .utf8)
        try await repo.fixture.commit(
            "slow",
            files: [
                "api.yaml": ConfigRepo.service("api", "slow"),
                "base.yaml": base.replacingOccurrences(
                    of: "  timeout: 2s\n", with: "  timeout: 2s\n  retry: {limit: 1, backoff: 1s}\n"),
            ])
        let start = Date()
        let result = try await repo.tide("reconcile")
        #expect(Date().timeIntervalSince(start) < 20, "one try of 2 s: a timeout is retried at a later pass")
        #expect(result.standardOutput.contains("timed out after 2s"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("tries again at"))
        let status = try await repo.tide("status", "--json")
        let targets = (try repo.json(status) as? [String: Any])?["targets"] as? [[String: Any]]
        let api = try #require(targets?.first { $0["service"] as? String == "api" })
        #expect(api["phase"] as? String == "Progressing", "a timeout is transient: nothing failed yet")
        let rollout = try #require(api["rollout"] as? [String: Any])
        #expect((rollout["retryReason"] as? String)?.contains("timed out") == true)
        #expect(rollout["transientFailures"] as? Int == 1)
        #expect(repo.calls().filter { $0.contains("slow") }.count == 1)
        #expect(rollout["retryAt"] != nil)
    }

    @Test("two concurrent reconciles on one state file: each step runs once, nothing is corrupted")
    func concurrentReconciles() async throws {
        let repo = try ConfigRepo()
        // Make each executor call slow enough for the two processes to overlap.
        try await repo.fixture.commit(
            "slower",
            files: [
                "base.yaml": try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
                    .replacingOccurrences(of: "timeout: 2s", with: "timeout: 20s")
            ])
        let script = repo.scratch.appending("executor.sh")
        var text = try String(contentsOfFile: script, encoding: .utf8)
        text = text.replacingOccurrences(of: "exit 0\n", with: "sleep 0.3\nexit 0\n")
        try Data(text.utf8).write(to: URL(fileURLWithPath: script))

        async let a = Task.detached { try await repo.tide("reconcile") }.value
        async let b = Task.detached { try await repo.tide("reconcile") }.value
        let (first, second) = try await (a, b)
        #expect(first.status == 0, "\(first.combined)")
        #expect(second.status == 0, "\(second.combined)")
        #expect(
            repo.calls() == [
                "deploy api@prod 1.0.0", "health api@prod 1.0.0", "deploy web@prod 1.0.0", "health web@prod 1.0.0",
            ])
        let outputs = [first.standardOutput, second.standardOutput]
        #expect(outputs.filter { $0.contains("2 deployed") }.count == 1)
        #expect(outputs.filter { $0.contains("2 unchanged") }.count == 1)
        let history = try await repo.tide("history", "--json", "--limit", "100")
        let events = try #require(try repo.json(history) as? [[String: Any]])
        #expect(events.filter { $0["kind"] as? String == "deployment.succeeded" }.count == 2)
        #expect(events.filter { $0["kind"] as? String == "revision.accepted" }.count == 1)
    }

    @Test("concurrent reconciles reaching one state file by other paths (a symlink, ./) still run each step once")
    func concurrentReconcilesThroughOtherPaths() async throws {
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "slower",
            files: [
                "base.yaml": try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
                    .replacingOccurrences(of: "timeout: 2s", with: "timeout: 20s")
            ])
        let script = repo.scratch.appending("executor.sh")
        var text = try String(contentsOfFile: script, encoding: .utf8)
        text = text.replacingOccurrences(of: "exit 0\n", with: "sleep 0.3\nexit 0\n")
        try Data(text.utf8).write(to: URL(fileURLWithPath: script))
        #expect(try await repo.tide("status").status == 0)  // creates the state file
        let symlink = repo.scratch.appending("linked.sqlite")
        try FileManager.default.createSymbolicLink(atPath: symlink, withDestinationPath: repo.state)
        let spellings = [repo.state, symlink, repo.scratch.path + "/./state.sqlite"]
        let runs = spellings.map { state in
            Task.detached {
                try await TideBinary.runDetached(
                    ["reconcile", "--repo", repo.fixture.repoPath, "--state", state], in: repo.scratch.path)
            }
        }
        var outputs: [ProcessOutput] = []
        for run in runs { outputs.append(try await run.value) }
        for output in outputs { #expect(output.status == 0, "\(output.combined)") }
        #expect(
            repo.calls() == [
                "deploy api@prod 1.0.0", "health api@prod 1.0.0", "deploy web@prod 1.0.0", "health web@prod 1.0.0",
            ])
        let history = try await repo.tide("history", "--json", "--limit", "100")
        let events = try #require(try repo.json(history) as? [[String: Any]])
        #expect(events.filter { $0["kind"] as? String == "deployment.succeeded" }.count == 2)

        // A second name for the file (a hard link) is refused before anything runs.
        let hardLink = repo.scratch.appending("hard.sqlite")
        try FileManager.default.linkItem(atPath: repo.state, toPath: hardLink)
        let refused = try await TideBinary.runDetached(
            ["reconcile", "--repo", repo.fixture.repoPath, "--state", hardLink], in: repo.scratch.path)
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("has 2 hard links"), "\(refused.combined)")
    }

    @Test("a waiting reconcile gives up with a clear message after --lock-timeout")
    func lockTimeout() async throws {
        let repo = try ConfigRepo()
        try await repo.fixture.commit(
            "hold",
            files: [
                "api.yaml": ConfigRepo.service("api", "hold"),
                "base.yaml": try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
                    .replacingOccurrences(of: "timeout: 2s", with: "timeout: 120s"),
            ])
        async let holder = Task.detached { try await repo.tide("reconcile") }.value
        // Wait until the holder is inside its executor call, so it surely holds the lock; it stays there until
        // the release file appears.
        for _ in 0..<600 where !repo.calls().contains("deploy api@prod hold") {
            try await Task.sleep(for: .milliseconds(50))
        }
        let waiter = try await repo.tide("reconcile", "--lock-timeout", "0.5")
        try Data().write(to: URL(fileURLWithPath: repo.log + ".release"))
        #expect(waiter.status == 1)
        #expect(waiter.standardError.contains("is locked by another tide process (pid"), "\(waiter.standardError)")
        let held = try await holder
        #expect(held.status == 0, "\(held.combined)")
    }

    @Test("a bare repository, a branch and a manifest root")
    func bareBranchPath() async throws {
        let repo = try ConfigRepo(bare: true, root: "deploy/prod")
        try await repo.fixture.git("checkout", "-q", "-b", "release")
        try repo.fixture.write("deploy/prod/api.yaml", ConfigRepo.service("api", "1.5.0"))
        try await repo.fixture.git("add", "-A")
        try await repo.fixture.git("commit", "-q", "-m", "release api 1.5.0")
        try await repo.fixture.git("push", "-q", "origin", "release")

        let plan = try await repo.tide("plan", "--json", extra: ["--branch", "release", "--path", "deploy/prod"])
        #expect(plan.status == 0, "\(plan.combined)")
        let actions = (try repo.json(plan) as? [String: Any])?["actions"] as? [[String: Any]]
        #expect(actions?.map { "\($0["target"].map { "\($0)" } ?? "") \($0["toVersion"] as? String ?? "")" }.count == 2)
        #expect(actions?.contains { $0["toVersion"] as? String == "1.5.0" } == true)

        let main = try await repo.tide("reconcile", extra: ["--path", "deploy/prod"])
        #expect(main.status == 0, "\(main.combined)")
        #expect(repo.calls().contains("deploy api@prod 1.0.0"))
        let release = try await repo.tide("reconcile", extra: ["--branch", "release", "--path", "deploy/prod"])
        #expect(release.status == 0)
        #expect(repo.calls().contains("deploy api@prod 1.5.0"))

        let missing = try await repo.tide("validate", extra: ["--path", "nope"])
        #expect(missing.status == 1)
        #expect(missing.standardError.contains("nope"))

        // A file, or a path of this machine: said as the operator's mistake, and nothing recorded in a new state
        // (hardening round two, 16).
        let fresh = repo.scratch.appending("fresh.sqlite")
        let file = try await TideBinary.runDetached(
            ["reconcile", "--repo", repo.fixture.repoPath, "--state", fresh, "--path", "deploy/prod/api.yaml"],
            in: repo.scratch.path)
        #expect(file.status == 1, "\(file.combined)")
        #expect(file.standardError.contains("--path 'deploy/prod/api.yaml' is not a directory"), "\(file.combined)")
        let recorded = try await runProcess("/usr/bin/sqlite3", [fresh, "SELECT count(*) FROM events"])
        #expect(recorded.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "\(recorded.combined)")
        let absolute = try await TideBinary.runDetached(
            ["reconcile", "--repo", repo.fixture.repoPath, "--state", fresh, "--path", "/etc"], in: repo.scratch.path)
        #expect(absolute.status == 1, "\(absolute.combined)")
        #expect(absolute.standardError.contains("--path 'etc' is not a directory"), "\(absolute.combined)")
    }

    @Test("usage errors exit 2; reported failures exit 1")
    func exitCodes() async throws {
        let repo = try ConfigRepo()
        #expect(try await TideBinary.runDetached(["reconcile", "--no-such-flag"]).status == 2)
        #expect(try await TideBinary.runDetached(["frobnicate"]).status == 2)
        #expect(try await TideBinary.runDetached(["history", "--limit", "many"]).status == 2)
        #expect(try await repo.tide("status", extra: ["--state", "postgres://x@y/z"]).status == 2)
        let notARepo = try await TideBinary.runDetached(["status", "--repo", repo.scratch.appending("nothing")])
        #expect(notARepo.status == 1)
        #expect(notARepo.standardError.contains("cannot open config repo"))
        #expect(try await TideBinary.runDetached(["--help"]).status == 0)
    }

    @Test("tide init makes a working config repo whose demo executor deploys; the hook blocks bad commits")
    func initDemo() async throws {
        let scratch = try TemporaryDirectory("tide-init")
        let dir = scratch.appending("config")
        let created = try await TideBinary.runDetached(["init", dir])
        #expect(created.status == 0, "\(created.combined)")

        // What init wrote is exactly manifests/ of this repository.
        let manifests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("manifests").path
        let files = try await runProcess(GitFixture.gitPath, ["ls-files"], in: dir).standardOutput.split(
            separator: "\n")
        #expect(files.count >= 5)
        for file in files {
            let ours = try String(contentsOfFile: manifests + "/" + file, encoding: .utf8)
            let theirs = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            #expect(ours == theirs, "\(file) differs from manifests/\(file): run scripts/embed-examples")
        }

        let reconcile = try await TideBinary.runDetached(["reconcile"], in: dir)
        #expect(reconcile.status == 0, "\(reconcile.combined)")
        #expect(
            try String(contentsOfFile: dir + "/deployments/prod/checkout/current/VERSION", encoding: .utf8) == "1.4.2\n"
        )
        #expect(
            try String(contentsOfFile: dir + "/deployments/staging/checkout/current/VERSION", encoding: .utf8)
                == "1.5.0\n")
        let request = try String(
            contentsOfFile: dir + "/deployments/prod/payments/current/request.json", encoding: .utf8)
        #expect(request.contains(#""replicas":4"#))

        // The hook runs $TIDE, else tide from PATH (ExamplesTests covers each way). An operator's shell may export
        // TIDE_REPO and TIDE_STATE for other verbs: the hook checks the repository being committed all the same.
        let git = { (args: [String]) throws -> ProcessOutput in
            try runProcess(
                GitFixture.gitPath, ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + args, in: dir,
                environment: [
                    "TIDE": TideBinary.path, "TIDE_REPO": "https://git.example.invalid/ops/config.git",
                    "TIDE_STATE": "/nonexistent/state.sqlite", "TIDE_BRANCH": "nosuch",
                ])
        }
        let path = dir + "/services/checkout.yaml"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        try Data(original.replacingOccurrences(of: "dependsOn:", with: "dependson:").utf8).write(
            to: URL(fileURLWithPath: path))
        _ = try git(["add", "-A"])
        let blocked = try git(["commit", "-m", "typo"])
        #expect(blocked.status != 0)
        #expect(
            blocked.standardError.contains(
                "services/checkout.yaml:17:3: Service 'checkout': spec: unknown field 'dependson'; did you mean 'dependsOn'?"
            ))

        try Data(original.replacingOccurrences(of: "version: \"1.4.2\"", with: "version: \"1.5.0\"").utf8).write(
            to: URL(fileURLWithPath: path))
        _ = try git(["add", "-A"])
        #expect(try git(["commit", "-q", "-m", "checkout 1.5.0 to prod"]).status == 0)
        #expect(try await TideBinary.runDetached(["reconcile"], in: dir).status == 0)
        #expect(
            try String(contentsOfFile: dir + "/deployments/prod/checkout/current/VERSION", encoding: .utf8) == "1.5.0\n"
        )
        _ = try git(["revert", "--no-edit", "HEAD"])
        let rollback = try await TideBinary.runDetached(["reconcile"], in: dir)
        #expect(rollback.standardOutput.contains("checkout@prod: deployed 1.5.0 → 1.4.2 [ROLLBACK]"))
        #expect(
            try String(contentsOfFile: dir + "/deployments/prod/checkout/current/VERSION", encoding: .utf8) == "1.4.2\n"
        )
    }

    @Test("the hook checks what `git commit -a` and `git commit PATH` stage into their own index ($GIT_INDEX_FILE)")
    func hookSeesCommitAll() async throws {
        let scratch = try TemporaryDirectory("tide-hook-index")
        let dir = scratch.appending("config")
        #expect(try await TideBinary.runDetached(["init", dir]).status == 0)
        let git = { (args: [String]) throws -> ProcessOutput in
            try runProcess(
                GitFixture.gitPath, ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + args, in: dir,
                environment: ["TIDE": TideBinary.path])
        }
        let head = { try git(["rev-parse", "HEAD"]).standardOutput }
        let before = try head()
        let path = dir + "/services/checkout.yaml"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        // Edited in the work tree only: the repository's index still holds the valid file.
        try Data(original.replacingOccurrences(of: "executor: local", with: "executor: nosuch").utf8).write(
            to: URL(fileURLWithPath: path))
        for command in [["commit", "-a", "-m", "typo"], ["commit", "-m", "typo", "services/checkout.yaml"]] {
            let blocked = try git(command)
            #expect(blocked.status != 0, "git \(command.joined(separator: " ")) must be refused")
            #expect(blocked.standardError.contains("spec.executor: executor 'nosuch' is not defined"))
        }
        #expect(try head() == before, "nothing was committed")
        // A valid edit goes through the same way.
        try Data(original.replacingOccurrences(of: "version: \"1.4.2\"", with: "version: \"1.4.3\"").utf8).write(
            to: URL(fileURLWithPath: path))
        #expect(try git(["commit", "-q", "-a", "-m", "checkout 1.4.3"]).status == 0)
        #expect(try head() != before)
    }

    @Test("tide rollback on a head that already reverted the change writes nothing and says so")
    func rollbackAlreadyReverted() async throws {
        let scratch = try TemporaryDirectory("tide-rollback-twice")
        let dir = scratch.appending("config")
        #expect(try await TideBinary.runDetached(["init", dir]).status == 0)
        #expect(try await TideBinary.runDetached(["reconcile"], in: dir).status == 0)
        let git = { (args: [String]) throws -> ProcessOutput in
            try runProcess(
                GitFixture.gitPath, ["-c", "user.name=Dev", "-c", "user.email=dev@example.com"] + args, in: dir)
        }
        let path = dir + "/services/checkout.yaml"
        let original = try String(contentsOfFile: path, encoding: .utf8)
        try Data(original.replacingOccurrences(of: "version: \"1.4.2\"", with: "version: \"1.4.3\"").utf8).write(
            to: URL(fileURLWithPath: path))
        #expect(try git(["commit", "-q", "--no-verify", "-a", "-m", "checkout 1.4.3"]).status == 0)
        #expect(try await TideBinary.runDetached(["reconcile"], in: dir).status == 0)
        _ = try git(["revert", "--no-edit", "HEAD"])
        let head = try git(["rev-parse", "HEAD"]).standardOutput
        let again = try await TideBinary.runDetached(["rollback", "checkout", "--env", "prod"], in: dir)
        #expect(again.combined.contains("nothing written"), "\(again.combined)")
        #expect(again.combined.contains("already reverted"))
        #expect(try git(["rev-parse", "HEAD"]).standardOutput == head, "no empty commit")
    }
}
