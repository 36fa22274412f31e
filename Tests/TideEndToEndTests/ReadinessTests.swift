import Foundation
import Testing
import TideGit
import TideTestSupport

/// `tide readiness` checks what each built-in executor needs on this machine, through the binary.
@Suite("End to end: readiness of built-in executors")
struct ReadinessTests {
    @Test("an nginx executor: PASS against a real nginx; FAIL naming the executor, what is wrong and what to do")
    func nginx() async throws {
        let scratch = try TemporaryDirectory("tide-readiness")
        let nginx = try Nginx(in: scratch)
        let backend = try Backend(version: "1.0.0", flaky: false)
        let fixture = try GitFixture()
        let state = scratch.appending("state.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        func platform(configDir: String = nginx.include, nginxBinary: String = "/usr/sbin/nginx") -> String {
            """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: edge}
            spec:
              type: nginx
              configDir: \(configDir)
              test: [\(nginxBinary), -t, -q, -p, \(nginx.prefix), -c, \(nginx.conf)]
              reload: [\(nginxBinary), -s, reload, -p, \(nginx.prefix), -c, \(nginx.conf)]
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {}

            """
        }
        func shop(_ version: String, backends: [String: String]) -> String {
            """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: shop}
            spec:
              executor: edge
              version: "\(version)"
              environments: {prod: {}}
              strategy: {type: canary, steps: [{setWeight: 50}]}
              config:
                nginx:
                  listen: \(nginx.port)
                  backends: {\(backends.sorted { $0.key < $1.key }.map { "\"\($0)\": \"\($1)\"" }.joined(separator: ", "))}

            """
        }
        func checks(_ output: ProcessOutput) throws -> [String: (pass: Bool, detail: String)] {
            let object = try JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8)) as? [String: Any]
            var result: [String: (pass: Bool, detail: String)] = [:]
            for check in object?["checks"] as? [[String: Any]] ?? [] {
                result[check["name"] as? String ?? ""] = (
                    check["pass"] as? Bool ?? false, check["detail"] as? String ?? ""
                )
            }
            return result
        }
        let address = "127.0.0.1:\(backend.port)"
        _ = try await fixture.commit(
            "shop 1.0.0",
            files: ["platform.yaml": platform(), "shop.yaml": shop("1.0.0", backends: ["1.0.0": address])])

        let ready = try await tide("readiness", "shop", "--env", "prod")
        #expect(ready.status == 0, "\(ready.combined)")
        #expect(ready.standardOutput.contains("READY") && !ready.standardOutput.contains("NOT READY"))
        #expect(!ready.standardOutput.contains("is not defined"), "\(ready.standardOutput)")
        for line in ["executor nginx binary", "executor include directory", "executor nginx -t", "executor routes"] {
            #expect(
                ready.standardOutput.split(separator: "\n").contains { $0.hasPrefix(line) && $0.contains(" PASS ") },
                "\(line) should pass: \(ready.standardOutput)")
        }
        let passed = try checks(try await tide("readiness", "shop", "--env", "prod", "--json"))
        #expect(passed["executor nginx binary"]?.detail == "edge (nginx): /usr/sbin/nginx is executable (test, reload)")
        #expect(
            passed["executor include directory"]?.detail
                == "edge (nginx): configDir \(nginx.include) exists and is writable")
        #expect(
            passed["executor routes"]?.detail
                == "edge (nginx): listen 127.0.0.1:\(nginx.port); 1.0.0 (desired) → \(address)")

        // 1.0.0 runs; 2.0.0 drops its backend (valid: no environment desires 1.0.0 any more), but the canary
        // would still route to it and a rollback return to it. And the machine lost the include directory and
        // the nginx binary the manifest names.
        let deployed = try await tide("reconcile")
        #expect(deployed.status == 0, "\(deployed.combined)")
        _ = try await fixture.commit(
            "shop 2.0.0",
            files: [
                "platform.yaml": platform(configDir: scratch.appending("gone"), nginxBinary: "/opt/none/nginx"),
                "shop.yaml": shop("2.0.0", backends: ["2.0.0": "127.0.0.1:9"]),
            ])
        #expect(try await tide("validate").status == 0)
        let text = try await tide("readiness", "shop", "--env", "prod")
        #expect(text.status == 1)
        #expect(text.standardOutput.contains("NOT READY"))
        let failed = try checks(try await tide("readiness", "shop", "--env", "prod", "--json"))
        #expect(failed["executor nginx binary"]?.pass == false)
        #expect(
            failed["executor nginx binary"]?.detail
                == "edge (nginx): /opt/none/nginx does not exist: install it there or fix spec.test and spec.reload")
        #expect(failed["executor include directory"]?.pass == false)
        #expect(
            failed["executor include directory"]?.detail
                == "edge (nginx): configDir \(scratch.appending("gone")) does not exist: create it, writable by the "
                + "user tide runs as, and put `include \(scratch.appending("gone"))/*.conf;` inside http { } of nginx.conf"
        )
        #expect(failed["executor nginx -t"]?.pass == false)
        #expect(failed["executor routes"]?.pass == false)
        #expect(
            failed["executor routes"]?.detail
                == "edge (nginx): config.nginx.backends: has no address for version 1.0.0 (running now): add it to "
                + "config.nginx.backends of shop (a progressive rollout routes to the version running now, and a "
                + "rollback returns to it)")
    }
}
