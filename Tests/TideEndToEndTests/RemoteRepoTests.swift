import Foundation
import Testing
import TideGit
import TideTestSupport

/// Config repos Tide fetches: file://, smart HTTP (git http-backend) with a token, SSH through a throwaway sshd,
/// and a server that never answers. Everything through the real binary.
@Suite("Remote config repos: fetched into a mirror in a child process with a deadline, pushed with compare-and-swap")
struct RemoteRepoTests {
    /// `repo`'s bare repository served by `git http-backend` behind a fresh token: the server, the token, the
    /// repository's name and URL, and the flags that give the token from a file.
    struct HTTPRemote {
        let server: GitHTTPServer
        let token: String
        let name: String
        let url: String
        let credentials: [String]
        var auth: [String] { ["--repo", url] + credentials }
    }

    static func httpRemote(_ repo: ConfigRepo) async throws -> HTTPRemote {
        let token = "tok-\(UUID().uuidString)"
        let root = (repo.fixture.repoPath as NSString).deletingLastPathComponent
        let server = try await detached { try GitHTTPServer(root: root, token: token) }
        let name = (repo.fixture.repoPath as NSString).lastPathComponent
        let tokenFile = repo.scratch.appending("token")
        try (token + "\n").write(toFile: tokenFile, atomically: true, encoding: .utf8)
        return HTTPRemote(
            server: server, token: token, name: name, url: server.url(name),
            credentials: ["--git-username", server.user, "--git-password-file", tokenFile])
    }

    @Test(
        "a --repo with a credential in any form is refused; neither the output nor the state holds it (hardening round two, 5)"
    )
    func credentialsInRemoteURLs() async throws {
        let repo = try ConfigRepo(bare: true)
        for url in SecretURLs.remotes {
            for verb in ["status", "reconcile"] {
                let result = try await repo.tide(verb, extra: ["--repo", url])
                #expect(result.status != 0, "\(verb) \(url): \(result.combined)")
                #expect(!result.combined.contains(SecretURLs.secret), "\(verb) \(url): \(result.combined)")
            }
        }
        let stateDirectory = URL(fileURLWithPath: repo.state).deletingLastPathComponent().path
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: stateDirectory)) ?? [] {
            let path = stateDirectory + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            #expect(data.range(of: Data(SecretURLs.secret.utf8)) == nil, "\(path) holds the secret")
        }
    }

    @Test("file:// — reconcile and plan fetch first; a new commit is fetched; a gone remote keeps the last revision")
    func fileRemote() async throws {
        let repo = try ConfigRepo(bare: true)
        let url = "file://" + repo.fixture.repoPath
        let first = try await repo.tide("reconcile", extra: ["--repo", url])
        #expect(first.status == 0, "\(first.combined)")
        #expect(repo.calls().count == 4)
        try await repo.fixture.commit("api 1.1.0", files: ["api.yaml": ConfigRepo.service("api", "1.1.0")])
        let plan = try await repo.tide("plan", extra: ["--repo", url])
        #expect(plan.standardOutput.contains("1.1.0"), "\(plan.combined)")
        #expect(try await repo.tide("reconcile", extra: ["--repo", url]).status == 0)
        #expect(repo.calls().suffix(2) == ["deploy api@prod 1.1.0", "health api@prod 1.1.0"])
        let status = try await repo.tide("status", extra: ["--repo", url])
        #expect(status.standardOutput.contains("Source:         \(url) (main)"), "\(status.standardOutput)")
        #expect(status.standardOutput.contains("ok"))

        // The remote goes away: the pass goes on with the last fetched revision, and says so.
        try FileManager.default.moveItem(atPath: repo.fixture.repoPath, toPath: repo.fixture.repoPath + ".gone")
        let offline = try await repo.tide("reconcile", extra: ["--repo", url])
        #expect(offline.status == 0, "\(offline.combined)")
        #expect(offline.standardError.contains("tide: warning: connect to \(url)"), "\(offline.standardError)")
        #expect(offline.standardError.contains("using the revision fetched at"))
        let after = try await repo.tide("status", "--json", extra: ["--repo", url])
        let source = try #require((try repo.json(after) as? [String: Any])?["source"] as? [String: Any])
        #expect((source["lastFetchError"] as? String)?.contains("failed to resolve path") == true, "\(source)")
        #expect(source["lastFetchSuccessAt"] != nil && source["consecutiveFetchFailures"] as? Int == 1)
        // A URL that was never fetched is an error, not an empty deployment.
        let never = try await repo.tide(
            "reconcile", extra: ["--repo", "file:///nonexistent/config.git", "--state", repo.scratch.appending("s2")])
        #expect(never.status == 1 && never.standardError.contains("failed to resolve path"), "\(never.combined)")
    }

    @Test(
        "smart HTTP with a token: fetch and write-back push work; a wrong token is refused; the token appears nowhere")
    func http() async throws {
        let repo = try ConfigRepo(bare: true)
        let http = try await Self.httpRemote(repo)
        let (server, token, url, auth) = (http.server, http.token, http.url, http.auth)

        let wrongFile = repo.scratch.appending("wrong")
        try "nope\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
        let refused = try await repo.tide(
            "plan", extra: ["--repo", url, "--git-username", server.user, "--git-password-file", wrongFile])
        #expect(refused.status == 1, "\(refused.combined)")
        #expect(refused.standardError.contains("authentication failed"), "\(refused.standardError)")
        let anonymous = try await repo.tide("plan", extra: ["--repo", url])
        #expect(anonymous.standardError.contains("asks for credentials"), "\(anonymous.combined)")

        // The token from the environment works too, and never reaches an executor.
        let fromEnvironment = try await TideBinary.runDetached(
            ["reconcile", "--repo", url, "--state", repo.state, "--git-username", server.user], in: repo.scratch.path,
            environment: ["TIDE_GIT_PASSWORD": token])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.combined)")
        let executorEnvironment = try String(contentsOfFile: repo.log + ".env", encoding: .utf8)
        #expect(executorEnvironment.contains("TIDE_ACTION="))
        #expect(!executorEnvironment.contains(token), "the git token reached an executor")
        // An automatic rollback writes its revert back through the same remote.
        let bad = ConfigRepo.service("api", "bad").replacingOccurrences(
            of: "  executor: script\n", with: "  executor: script\n  rollback: {automatic: true, writeBack: revert}\n")
        try await repo.fixture.commit("api bad", files: ["api.yaml": bad])
        let failed = try await repo.tide("reconcile", extra: auth)
        #expect(failed.standardError.contains("reverted "), "\(failed.combined)")
        let remoteLog = try await runProcess(
            "/usr/bin/git", ["--git-dir", repo.fixture.repoPath, "log", "-2", "--format=%s"]
        ).standardOutput
        #expect(remoteLog == "Revert \"api bad\"\napi bad\n", "\(remoteLog)")

        var everything = refused.combined + anonymous.combined + failed.combined
        everything += try await repo.tide("status", "--json", extra: auth).combined
        everything += try await repo.tide("history", extra: auth).combined
        await everything += try runProcess("/usr/bin/sqlite3", [repo.state, ".dump"]).standardOutput
        #expect(!everything.contains(token))
    }

    @Test("SSH: the host key is checked against known_hosts — the right one fetches, a wrong one is refused")
    func ssh() async throws {
        guard SSHServer.isAvailable else {
            Issue.record("openssh-server is not installed (scripts/install-deps installs it)")
            return
        }
        let repo = try ConfigRepo(bare: true)
        let server = try await detached { try SSHServer() }
        let url = server.url(repo.fixture.repoPath)
        let wrong = try await repo.tide(
            "plan", extra: ["--repo", url, "--ssh-key", server.clientKey, "--known-hosts", server.wrongKnownHosts])
        #expect(wrong.status == 1)
        #expect(wrong.standardError.contains("is not the one \(server.wrongKnownHosts) lists"), "\(wrong.combined)")
        let empty = repo.scratch.appending("empty_known_hosts")
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let unknown = try await repo.tide(
            "plan", extra: ["--repo", url, "--ssh-key", server.clientKey, "--known-hosts", empty])
        #expect(
            unknown.standardError.contains("refusing SSH host [127.0.0.1]:\(server.port): not in"),
            "\(unknown.combined)")
        #expect(repo.calls().isEmpty)

        let good = try await repo.tide(
            "reconcile", extra: ["--repo", url, "--ssh-key", server.clientKey, "--known-hosts", server.knownHosts])
        #expect(good.status == 0, "\(good.combined)")
        #expect(repo.calls().count == 4)
    }

    @Test(
        "a server that accepts and never answers: the fetch is abandoned at the deadline, the daemon stays healthy and says why"
    )
    func silentServer() async throws {
        let repo = try ConfigRepo(bare: true)
        let silent = try await detached { try SilentServer() }
        let url = "http://127.0.0.1:\(silent.port)/config.git"
        let started = Date()
        let cli = try await repo.tide("plan", extra: ["--repo", url, "--fetch-timeout", "2s"])
        // 2 s, then SIGTERM and 2 s to SIGKILL; a loaded machine adds more.
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(cli.standardError.contains("abandoned after 2 s"), "\(cli.combined)")

        let daemon = try await TideDaemon(
            ["--repo", url, "--state", repo.state, "--fetch-timeout", "2s", "--interval", "1s"],
            in: repo.scratch.path, logDirectory: repo.scratch.path)
        #expect(await daemon.waitForLog("abandoned after 2 s", count: 2, timeout: 30), "\(daemon.log())")
        #expect(try await daemon.get("/healthz").status == 200)
        let ready = try await daemon.get("/readyz")
        #expect(
            ready.status == 503 && ready.body.contains("never fetched: fetch from \(url) abandoned"), "\(ready.body)")
        let metrics = try await daemon.get("/metrics").body
        #expect(metrics.contains(#"tide_fetches_total{result="failure"}"#) && metrics.contains("tide_fetch_failing 1"))
        let status = try await repo.tide("status", "--json", extra: ["--repo", url])
        #expect(status.standardOutput.contains("abandoned after 2 s"), "\(status.combined)")
        #expect(await daemon.stop() == 0)
        // No git child of this daemon (they run in its directory) is left behind.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { entry in
            guard Int(entry) != nil,
                let command = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                String(decoding: command, as: UTF8.self).contains("git-remote")
            else { return false }
            let directory = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd")
            return directory == repo.scratch.path
        }
        #expect(leftovers.isEmpty, "git children left running: \(leftovers)")
    }

    @Test(
        "push race: someone pushes between Tide's fetch and its write-back — rebuilt on their head, never forced, nothing lost"
    )
    func pushRace() async throws {
        let repo = try ConfigRepo(bare: true)
        let url = "file://" + repo.fixture.repoPath
        #expect(try await repo.tide("reconcile", extra: ["--repo", url]).status == 0)
        // A colleague's clone with a commit ready; the executor pushes it while Tide deploys the bad version.
        let colleague = repo.scratch.appending("colleague")
        try await runProcess("/usr/bin/git", ["clone", "-q", repo.fixture.repoPath, colleague])
        let bad = ConfigRepo.service("api", "bad").replacingOccurrences(
            of: "  executor: script\n", with: "  executor: script\n  rollback: {automatic: true, writeBack: revert}\n")
        let badCommit = try await repo.fixture.commit("api bad", files: ["api.yaml": bad])
        for arguments in [
            ["pull", "-q"],
            [
                "-c", "user.name=Colleague", "-c", "user.email=c@example.com", "commit", "-q",
                "--allow-empty", "-m", "colleague's unrelated change",
            ],
        ] {
            let result = try await runProcess("/usr/bin/git", arguments, in: colleague)
            #expect(result.status == 0, "\(result.combined)")
        }
        let racer = repo.scratch.appending("racer.sh")
        try """
        #!/bin/sh
        if [ "$TIDE_ACTION $TIDE_VERSION" = "deploy bad" ]; then
          git -C "\(colleague)" pull -q --rebase origin main && git -C "\(colleague)" push -q origin main
        fi
        exec "\(repo.scratch.appending("executor.sh"))"
        """.write(toFile: racer, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: racer)
        try await repo.fixture.git("pull", "-q", "--rebase", "origin", "main")
        let base = try String(contentsOfFile: repo.fixture.workTree + "/base.yaml", encoding: .utf8)
        try await repo.fixture.commit(
            "racing executor",
            files: ["base.yaml": base.replacingOccurrences(of: repo.scratch.appending("executor.sh"), with: racer)])
        _ = badCommit
        let failed = try await repo.tide("reconcile", extra: ["--repo", url])
        #expect(failed.standardError.contains("reverted "), "\(failed.combined)")
        let log = try await runProcess(
            "/usr/bin/git", ["--git-dir", repo.fixture.repoPath, "log", "-4", "--format=%s"]
        ).standardOutput
        #expect(
            log == "Revert \"api bad\"\ncolleague's unrelated change\nracing executor\napi bad\n", "\(log)")
        let events = try await runProcess("/usr/bin/sqlite3", [repo.state, "SELECT kind, message FROM events"])
            .standardOutput
        #expect(events.contains("push.rejected|revert: push of "), "\(events)")
        let settled = try await repo.tide("reconcile", extra: ["--repo", url])
        #expect(settled.status == 0, "\(settled.combined)")
    }

    @Test(
        "kill -9 of tide run during a rollback's write-back push: at restart the push that went through is recorded as Tide's own, and nothing runs again (hardening round two, 9)"
    )
    func killedMidPush() async throws {
        let repo = try ConfigRepo(bare: true)
        let http = try await Self.httpRemote(repo)
        let (server, auth) = (http.server, http.auth)
        #expect(try await repo.tide("reconcile", extra: auth).status == 0)
        let bad = ConfigRepo.service("api", "bad").replacingOccurrences(
            of: "  executor: script\n", with: "  executor: script\n  rollback: {automatic: true, writeBack: revert}\n")
        try await repo.fixture.commit("api bad", files: ["api.yaml": bad])

        // tide run rolls the bad version back and pushes the revert; the server holds the push, Tide is killed.
        try server.holdPushes()
        let daemon = try await TideDaemon(
            auth + ["--state", repo.state, "--interval", "1s"], in: repo.scratch.path,
            logDirectory: repo.scratch.path)
        let deadline = Date().addingTimeInterval(60)
        while !server.pushArrived && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(server.pushArrived, "no push came: \(daemon.log())")
        #expect(await daemon.stop(signal: SIGKILL) != nil)
        let calls = repo.calls()
        #expect(
            calls.suffix(3) == ["deploy api@prod bad", "rollback api@prod 1.0.0", "health api@prod 1.0.0"], "\(calls)")
        // The orphaned push goes through.
        server.releasePushes()
        var remoteHead = ""
        while !remoteHead.hasPrefix("Revert") && Date() < deadline {
            remoteHead = try await runProcess(
                "/usr/bin/git", ["--git-dir", repo.fixture.repoPath, "log", "-1", "--format=%s"]
            ).standardOutput
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(remoteHead == "Revert \"api bad\"\n", "\(remoteHead)")

        func apiEvents() async throws -> [Substring] {
            try await runProcess(
                "/usr/bin/sqlite3", [repo.state, "SELECT kind FROM events WHERE service = 'api' ORDER BY id"]
            ).standardOutput.split(separator: "\n")
        }
        let before = try await apiEvents()
        #expect(before.last == "deployment.rolled-back", "\(before)")

        // Restarted: the revert is Tide's own — recorded, nothing deployed or rolled back again.
        let restarted = try await repo.tide("reconcile", extra: auth)
        #expect(restarted.status == 0, "\(restarted.combined)")
        let again = try await repo.tide("reconcile", extra: auth)
        #expect(again.status == 0, "\(again.combined)")
        #expect(repo.calls() == calls, "ran again after the restart: \(repo.calls().dropFirst(calls.count))")
        let events = try await apiEvents()
        #expect(Array(events.dropFirst(before.count)) == ["revert.committed"], "\(events)")
        #expect(events.filter { $0 == "deployment.rolled-back" }.count == 1, "\(events)")
        let revert = try await runProcess("/usr/bin/git", ["--git-dir", repo.fixture.repoPath, "rev-parse", "HEAD"])
            .standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let target = try await runProcess(
            "/usr/bin/sqlite3",
            [repo.state, "SELECT phase, version, revision, failed FROM targets WHERE service = 'api'"]
        ).standardOutput
        #expect(target.hasPrefix("RolledBack|1.0.0|\(revert)|"), "\(target)")
        #expect(!target.contains("writeBack"), "\(target)")
    }

    @Test(
        "credentials never follow a redirect to another host, port or scheme — refused, and the other address sees no token; a redirect within the remote's address still works (hardening round two, 4)"
    )
    func redirects() async throws {
        let repo = try ConfigRepo(bare: true)
        let http = try await Self.httpRemote(repo)
        let (git, token, name, credentials) = (http.server, http.token, http.name, http.credentials)
        // Moved within the same address: followed, with the credentials.
        let moved = try await repo.tide(
            "plan", extra: ["--repo", "http://127.0.0.1:\(git.server.port)/moved/\(name)"] + credentials)
        #expect(moved.status == 0, "\(moved.combined)")

        let elsewhere = try await detached {
            (
                try RedirectingServer(mode: "record", record: repo.scratch.appending("host.log"), host: "127.0.0.2"),
                try RedirectingServer(mode: "record", record: repo.scratch.appending("port.log"))
            )
        }
        let targets = [
            ("another host", "http://127.0.0.2:\(elsewhere.0.server.port)", elsewhere.0),
            ("another port", "http://127.0.0.1:\(elsewhere.1.server.port)", elsewhere.1),
        ]
        for (what, target, recorder) in targets {
            for mode in ["redirect", "redirect-after-auth"] {
                let redirector = try await detached {
                    try RedirectingServer(
                        mode: mode, target: target, record: repo.scratch.appending("unused"), user: git.user,
                        token: token)
                }
                let url = "http://127.0.0.1:\(redirector.server.port)/\(name)"
                for verb in ["plan", "reconcile"] {
                    let refused = try await repo.tide(verb, extra: ["--repo", url] + credentials)
                    #expect(refused.status != 0, "\(what), \(mode), \(verb): \(refused.combined)")
                    #expect(
                        refused.combined.contains("redirects to") || refused.combined.contains("cannot redirect"),
                        "\(what), \(mode), \(verb): \(refused.combined)")
                    #expect(!refused.combined.contains(token))
                }
                #expect(!recorder.requests.contains("Basic"), "\(what), \(mode): \(recorder.requests)")
            }
        }
    }

    @Test(
        "fetches abandoned at their deadline leave no partial packs behind, however many there were (hardening round two, 11)"
    )
    func abandonedPacks() async throws {
        let repo = try ConfigRepo(bare: true)
        // 2 MB that does not compress: a pack too big to arrive in time once it trickles.
        var noise = [UInt8](repeating: 0, count: 2_000_000)
        for index in noise.indices { noise[index] = UInt8.random(in: 0...255) }
        try Data(noise).write(to: URL(fileURLWithPath: repo.fixture.workTree + "/noise.bin"))
        try await repo.fixture.commit("noise")
        let http = try await Self.httpRemote(repo)
        let (server, auth) = (http.server, http.auth)
        func partialPacks() throws -> [String] {
            let mirrors = try FileManager.default.contentsOfDirectory(atPath: repo.scratch.path).filter {
                $0.hasPrefix("mirror-")
            }
            return try mirrors.flatMap { mirror in
                try FileManager.default.contentsOfDirectory(atPath: repo.scratch.appending(mirror + "/objects/pack"))
                    .filter { $0.hasPrefix("pack_git2_") }
            }
        }
        server.trickleFetches()
        for _ in 0..<3 {
            let abandoned = try await repo.tide("plan", extra: auth + ["--fetch-timeout", "2s"])
            #expect(abandoned.standardError.contains("abandoned after 2 s"), "\(abandoned.combined)")
        }
        // Each fetch clears what the one before it left: one partial pack at most, never three.
        let left = try partialPacks()
        #expect(left.count <= 1, "\(left)")
        server.trickleFetches(false)
        let fetched = try await repo.tide("plan", extra: auth)
        #expect(fetched.status == 0, "\(fetched.combined)")
        let none = try partialPacks()
        #expect(none.isEmpty, "\(none)")
    }

    @Test(
        "a file:// remote whose config includes a FIFO: tide run keeps passing and answering, and SIGTERM stops it at once (hardening round two, 10)"
    )
    func fifoInclude() async throws {
        let repo = try ConfigRepo(bare: true)
        let url = "file://" + repo.fixture.repoPath
        let daemon = try await TideDaemon(
            ["--repo", url, "--state", repo.state, "--interval", "1s", "--fetch-timeout", "2s"],
            in: repo.scratch.path, logDirectory: repo.scratch.path)
        #expect(await daemon.waitForLog("info pass "), "\(daemon.log())")
        let fifo = repo.fixture.repoPath + "/evil.fifo"
        #expect(mkfifo(fifo, 0o644) == 0)
        let config = try FileHandle(forWritingTo: URL(fileURLWithPath: repo.fixture.repoPath + "/config"))
        try config.seekToEnd()
        try config.write(contentsOf: Data("[include]\n\tpath = \(fifo)\n".utf8))
        try config.close()
        let passes = daemon.log().components(separatedBy: "info pass ").count - 1
        #expect(await daemon.waitForLog("info pass ", count: passes + 3, timeout: 30), "\(daemon.log())")
        let started = Date()
        #expect(try await daemon.get("/healthz").status == 200)
        #expect([200, 503].contains(try await daemon.get("/readyz").status))
        #expect(Date().timeIntervalSince(started) < 10)  // at once; a loaded machine adds seconds
        let stopping = Date()
        #expect(await daemon.stop(signal: SIGTERM, timeout: 30) == 0, "\(daemon.log())")
        #expect(Date().timeIntervalSince(stopping) < 15)
    }
}
