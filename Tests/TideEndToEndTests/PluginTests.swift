import Foundation
import Testing
import TideTestSupport

/// `type: plugin` through the tide binary: one process for every action of a pass, gone when tide exits.
@Suite("End to end: a plugin executor driven by the tide binary")
struct PluginTests {
    @Test("a pass deploys through one plugin process, which exits when tide does")
    func pluginPass() async throws {
        let repo = try ConfigRepo()
        let log = repo.scratch.appending("plugin.log")
        let script = repo.scratch.appending("plugin.py")
        try Data(
            #"""
            import json, os, sys
            with open(os.environ["PLUGIN_LOG"], "a") as log:
                for line in sys.stdin:
                    request = json.loads(line)
                    log.write("%d %s %s@%s %s\n" % (os.getpid(), request["action"], request["service"],
                                                   request["environment"], request["version"]))
                    log.flush()
                    print(json.dumps({"actionId": request["actionId"], "ok": True}), flush=True)
            """#.utf8
        ).write(to: URL(fileURLWithPath: script))
        try await repo.fixture.commit(
            "plugin",
            files: [
                "plugin.yaml": """
                apiVersion: tide/v1
                kind: Executor
                metadata: {name: platform}
                spec:
                  type: plugin
                  command: ["python3", "\(script)"]
                  timeout: 10s
                  env: {PLUGIN_LOG: "\(log)"}

                """,
                "api.yaml": ConfigRepo.service("api", "1.0.0").replacingOccurrences(
                    of: "executor: script", with: "executor: platform"),
                "web.yaml": ConfigRepo.service("web", "1.0.0", dependsOn: "[api]").replacingOccurrences(
                    of: "executor: script", with: "executor: platform"),
            ])
        let result = try await repo.tide("reconcile")
        #expect(result.status == 0, "\(result.combined)")
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(
            lines.map { $0.split(separator: " ", maxSplits: 1)[1] } == [
                "deploy api@prod 1.0.0", "health api@prod 1.0.0", "deploy web@prod 1.0.0", "health web@prod 1.0.0",
            ])
        let pids = Set(lines.map { $0.split(separator: " ")[0] })
        #expect(pids.count == 1)
        // Its stdin closed with tide: the plugin is gone.
        let pid = try #require(pids.first.flatMap { pid_t($0) })
        var alive = true
        for _ in 0..<50 where alive {
            alive = kill(pid, 0) == 0
            if alive { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(!alive)
    }
}
