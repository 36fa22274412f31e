import Foundation
import Testing
import TideGit
import TideTestSupport

/// Rollbacks and config-only canaries through a real nginx, driven by the release binary as an operator runs it.
@Suite("End to end: rollbacks and config-only canaries through a real nginx")
struct NginxRollbackTests {
    /// An nginx executor whose reload goes through `wrapper` (so a test can make it answer 75, "try later").
    static func platform(_ nginx: Nginx, reload: [String], analysis: String) -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: edge}
        spec:
          type: nginx
          configDir: \(nginx.include)
          test: [/usr/sbin/nginx, -t, -q, -p, \(nginx.prefix), -c, \(nginx.conf)]
          reload: [\(reload.joined(separator: ", "))]
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}
        ---
        \(analysis)
        """
    }

    static func service(_ version: String, listen: Int, backends: [String: Int], steps: String) -> String {
        let lines = backends.sorted { $0.key < $1.key }.map { "        \"\($0.key)\": \"127.0.0.1:\($0.value)\"" }
        return """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: shop}
            spec:
              executor: edge
              version: "\(version)"
              environments: {prod: {}}
              config:
                nginx:
                  listen: \(listen)
                  backends:
            \(lines.joined(separator: "\n"))
              strategy:
                type: canary
                steps: \(steps)

            """
    }

    /// Which bodies `n` requests through nginx got.
    static func bodies(_ nginx: Nginx, _ n: Int) throws -> [String: Int] { try nginx.bodies(times: n) }

    @Test(
        "nginx reload answers 75 while a failed canary rolls back: RollingBack, not Failed; once it works, stable serves 100 %"
    )
    func rollbackThroughPartition() async throws {
        let scratch = try TemporaryDirectory("tide-nginx-rollback")
        let nginx = try Nginx(in: scratch)
        let stable = try Backend(version: "1.0.0", flaky: false)
        let candidate = try Backend(version: "2.0.0", flaky: false)
        let partition = scratch.appending("partition")
        // The reload: exit 75 while the partition file exists, else nginx's own.
        let reload = scratch.appending("reload")
        try Data(
            """
            #!/bin/sh
            [ -e \(partition) ] && { echo "control plane unreachable" >&2; exit 75; }
            exec /usr/sbin/nginx -s reload -p \(nginx.prefix) -c \(nginx.conf)

            """.utf8
        ).write(to: URL(fileURLWithPath: reload))
        // The analysis: a measurement that cuts the reload off and then says the candidate is bad — the partition
        // starts between the canary's last weight and its rollback.
        let verdict = scratch.appending("verdict")
        try Data("#!/bin/sh\ntouch \(partition)\necho 1\n".utf8).write(to: URL(fileURLWithPath: verdict))
        for script in [reload, verdict] {
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        }
        let analysis = """
            apiVersion: tide/v1
            kind: Analysis
            metadata: {name: verdict}
            spec:
              metrics:
                - name: errors
                  provider: {command: {command: ["\(verdict)"]}}
                  failureCondition: "result > 0"

            """
        let fixture = try GitFixture()
        let state = scratch.appending("state.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        let backends = ["1.0.0": stable.port, "2.0.0": candidate.port]
        let steps = "[{setWeight: 50}, {analysis: verdict}, {setWeight: 80}]"
        _ = try await fixture.commit(
            "shop 1.0.0",
            files: [
                "platform.yaml": Self.platform(nginx, reload: [reload], analysis: analysis),
                "shop.yaml": Self.service("1.0.0", listen: nginx.port, backends: backends, steps: steps),
            ])
        let first = try await tide("reconcile")
        #expect(first.status == 0, "\(first.combined)")
        #expect(try nginx.get() == (200, "1.0.0"))

        _ = try await fixture.commit(
            "shop 2.0.0",
            files: ["shop.yaml": Self.service("2.0.0", listen: nginx.port, backends: backends, steps: steps)])
        let failed = try await tide("reconcile")
        #expect(failed.combined.contains("analysis verdict failed"), "\(failed.combined)")
        #expect(failed.combined.contains("attempt 1 failed"), "\(failed.combined)")
        let status = try await tide("status")
        #expect(status.standardOutput.contains("rolling back"), "\(status.combined)")
        #expect(status.standardOutput.contains("control plane unreachable"), "\(status.combined)")
        // nginx kept what it had: half the traffic still on the candidate (the rollback is not done, and says so).
        let during = try Self.bodies(nginx, 40)
        #expect(during["2.0.0", default: 0] > 0, "\(during)")
        // Another pass before the retry is due changes nothing, and never advances the rollout.
        let held = try await tide("reconcile")
        #expect(!held.combined.contains("setWeight 80"), "\(held.combined)")

        // The partition heals; tide retry tries the rollback now (no wait for the backoff).
        try FileManager.default.removeItem(atPath: partition)
        let retried = try await tide("retry", "shop", "--env", "prod")
        #expect(retried.status == 0, "\(retried.combined)")
        let after = try Self.bodies(nginx, 40)
        #expect(after == ["1.0.0": 40], "stable serves all the traffic: \(after)")
        let healed = try await tide("status", "--json")
        #expect(healed.standardOutput.contains("\"phase\" : \"RolledBack\""), "\(healed.standardOutput)")
        let include = try String(contentsOfFile: nginx.include + "/tide-shop-prod.conf", encoding: .utf8)
        #expect(!include.contains("127.0.0.1:\(candidate.port)"), "\(include)")
        // Later passes leave it so: 2.0.0 is held, 1.0.0 serves.
        _ = try await tide("reconcile")
        #expect(try Self.bodies(nginx, 20) == ["1.0.0": 20])
    }

    @Test("a config-only canary through nginx splits traffic between the old and the new config of one version")
    func configOnlyCanary() async throws {
        let scratch = try TemporaryDirectory("tide-nginx-config")
        let nginx = try Nginx(in: scratch)
        let old = try Backend(version: "old-instance", flaky: false)
        let new = try Backend(version: "new-instance", flaky: false)
        let fixture = try GitFixture()
        let state = scratch.appending("state.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        let reload = ["/usr/sbin/nginx", "-s", "reload", "-p", nginx.prefix, "-c", nginx.conf]
        let steps = "[{setWeight: 50}, {pause: {}}]"
        _ = try await fixture.commit(
            "shop 1.0.0 on the old instance",
            files: [
                "platform.yaml": Self.platform(nginx, reload: reload, analysis: ""),
                "shop.yaml": Self.service("1.0.0", listen: nginx.port, backends: ["1.0.0": old.port], steps: steps),
            ])
        #expect(try await tide("reconcile").status == 0)
        #expect(try Self.bodies(nginx, 5) == ["old-instance": 5])

        // Same version, new config: 1.0.0 moves to the new instance through the canary.
        _ = try await fixture.commit(
            "shop 1.0.0 on the new instance",
            files: ["shop.yaml": Self.service("1.0.0", listen: nginx.port, backends: ["1.0.0": new.port], steps: steps)]
        )
        let paused = try await tide("reconcile")
        #expect(paused.combined.contains("CONFIG") || paused.combined.contains("config"), "\(paused.combined)")
        let include = try String(contentsOfFile: nginx.include + "/tide-shop-prod.conf", encoding: .utf8)
        #expect(include.contains("127.0.0.1:\(old.port)") && include.contains("127.0.0.1:\(new.port)"), "\(include)")
        let split = try Self.bodies(nginx, 200)
        // Weighted round robin at 50 %: both sides answer about half.
        #expect((60...140).contains(split["old-instance", default: 0]), "\(split)")
        #expect((60...140).contains(split["new-instance", default: 0]), "\(split)")

        let promoted = try await tide("promote", "shop", "--env", "prod")
        #expect(promoted.status == 0, "\(promoted.combined)")
        _ = try await tide("reconcile")
        #expect(try Self.bodies(nginx, 20) == ["new-instance": 20])
    }
}
