import Foundation
import Testing
import TideExecutors
import TideGit
import TideManifest
import TideTestSupport

/// A backend on loopback that answers its version; a flaky one fails every third request after the first.
final class Backend: @unchecked Sendable {
    let port: Int
    private let process: Process

    init(version: String, flaky: Bool) throws {
        let script = """
            import http.server, sys, threading
            lock = threading.Lock(); count = [0]
            class H(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def log_message(self, *a): pass
                def do_GET(self):
                    if self.path == "/_count":
                        body = str(count[0]).encode()
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                    with lock:
                        n = count[0]; count[0] += 1
                    fail = sys.argv[2] == "flaky" and n % 10 in (3, 6, 9)
                    body = sys.argv[1].encode()
                    self.send_response(500 if fail else 200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
            class S(http.server.ThreadingHTTPServer):
                request_queue_size = 512  # the default 5 makes nginx drop mirrored copies on a loaded machine
            s = S(("127.0.0.1", 0), H)
            print(s.server_address[1], flush=True)
            s.serve_forever()
            """
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, version, flaky ? "flaky" : "healthy"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        var line = Data()
        while !line.contains(0x0A) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            process.terminate()
            throw FixtureError("backend \(version) did not start")
        }
        self.port = port
    }

    /// How many requests (other than this question) it has answered.
    func count() throws -> Int {
        let output = try runProcess(
            "/usr/bin/python3",
            [
                "-c",
                "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:\(port)/_count', timeout=5).read().decode())",
            ])
        guard let n = Int(output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw FixtureError("count: \(output.combined)")
        }
        return n
    }

    deinit {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}

/// A real nginx running from a prefix of its own, including the files Tide writes; stopped when released.
final class Nginx: @unchecked Sendable {
    let prefix: String
    let port: Int
    private let master = Process()
    var include: String { prefix + "/tide" }
    var conf: String { prefix + "/nginx.conf" }

    init(in scratch: TemporaryDirectory) throws {
        prefix = scratch.appending("nginx")
        try FileManager.default.createDirectory(atPath: prefix + "/tide", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: prefix + "/logs", withIntermediateDirectories: true)
        port = try freeLoopbackPort()
        try Data(
            """
            pid \(prefix)/nginx.pid;
            error_log \(prefix)/error.log;
            worker_processes 1;
            events { worker_connections 64; }
            http {
                access_log off;
                client_body_temp_path \(prefix)/client;
                proxy_temp_path \(prefix)/proxy;
                fastcgi_temp_path \(prefix)/fastcgi;
                uwsgi_temp_path \(prefix)/uwsgi;
                scgi_temp_path \(prefix)/scgi;
                include \(prefix)/tide/*.conf;
            }

            """.utf8
        ).write(to: URL(fileURLWithPath: conf))
        let check = try runProcess("/usr/sbin/nginx", ["-t", "-p", prefix, "-c", conf])
        guard check.status == 0 else { throw FixtureError("nginx -t: \(check.standardError)") }
        // In the foreground (daemon off), as this process's child: stopped in deinit, never left behind.
        master.executableURL = URL(fileURLWithPath: "/usr/sbin/nginx")
        master.arguments = ["-p", prefix, "-c", conf, "-g", "daemon off;"]
        master.standardOutput = FileHandle.nullDevice
        master.standardError = FileHandle.nullDevice
        try master.run()
        for _ in 0..<100 where !FileManager.default.fileExists(atPath: prefix + "/nginx.pid") {
            usleep(50_000)
        }
        guard FileManager.default.fileExists(atPath: prefix + "/nginx.pid") else {
            throw FixtureError(
                "nginx did not start: \((try? String(contentsOfFile: prefix + "/error.log", encoding: .utf8)) ?? "")")
        }
    }

    /// `n` GETs through nginx, one after the other; the statuses seen.
    func get(times n: Int) throws -> [Int32: Int] {
        let output = try runProcess(
            "/usr/bin/python3",
            [
                "-c",
                """
                import urllib.request, urllib.error, collections
                seen = collections.Counter()
                for _ in range(\(n)):
                    try:
                        seen[urllib.request.urlopen("http://127.0.0.1:\(port)/", timeout=5).status] += 1
                    except urllib.error.HTTPError as e:
                        seen[e.code] += 1
                print(" ".join("%d=%d" % kv for kv in seen.items()))
                """,
            ])
        var seen: [Int32: Int] = [:]
        for pair in output.standardOutput.split(whereSeparator: \.isWhitespace) {
            let parts = pair.split(separator: "=")
            if parts.count == 2, let status = Int32(parts[0]), let count = Int(parts[1]) { seen[status] = count }
        }
        return seen
    }

    /// `n` GETs through nginx in one process: how many got each body (a failed request counts as `status N`).
    func bodies(times n: Int) throws -> [String: Int] {
        let output = try runProcess(
            "/usr/bin/python3",
            [
                "-c",
                """
                import urllib.request, urllib.error, collections
                seen = collections.Counter()
                for _ in range(\(n)):
                    try:
                        seen[urllib.request.urlopen("http://127.0.0.1:\(port)/", timeout=5).read().decode()] += 1
                    except urllib.error.HTTPError as e:
                        seen["status %d" % e.code] += 1
                for body, count in seen.items(): print("%s\\t%d" % (body, count))
                """,
            ])
        var seen: [String: Int] = [:]
        for line in output.standardOutput.split(separator: "\n") {
            let parts = line.split(separator: "\t")
            if parts.count == 2, let count = Int(parts[1]) { seen[String(parts[0])] = count }
        }
        return seen
    }

    /// GET through nginx: status and body.
    func get() throws -> (Int32, String) {
        let output = try runProcess(
            "/usr/bin/python3",
            [
                "-c",
                """
                import urllib.request, urllib.error, sys
                try:
                    r = urllib.request.urlopen("http://127.0.0.1:\(port)/", timeout=5); print(r.status, r.read().decode())
                except urllib.error.HTTPError as e:
                    print(e.code, "")
                """,
            ])
        let parts = output.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ")
        return (Int32(parts.first ?? "0") ?? 0, parts.count > 1 ? String(parts[1]) : "")
    }

    deinit {
        kill(master.processIdentifier, SIGQUIT)
        for _ in 0..<100 where master.isRunning { usleep(20_000) }
        if master.isRunning { kill(master.processIdentifier, SIGKILL) }
        master.waitUntilExit()
    }
}

@Suite("End to end: canaries through a real nginx, decided by a probe")
struct NginxTests {
    @Test(
        "a candidate failing 30 % is caught by the probe, rolled back and reverted in git; a healthy one walks 10→25→50→100"
    )
    func canaryThroughNginx() async throws {
        let scratch = try TemporaryDirectory("tide-nginx")
        let nginx = try Nginx(in: scratch)
        let stable = try Backend(version: "1.0.0", flaky: false)
        let flaky = try Backend(version: "2.0.0", flaky: true)
        let healthy = try Backend(version: "2.1.0", flaky: false)
        let fixture = try GitFixture()
        let state = scratch.appending("state.sqlite")
        func tide(_ arguments: String...) async throws -> ProcessOutput {
            try await TideBinary.runDetached(
                arguments + ["--repo", fixture.repoPath, "--state", state], in: scratch.path)
        }
        let platform = """
            apiVersion: tide/v1
            kind: Executor
            metadata: {name: edge}
            spec:
              type: nginx
              configDir: \(nginx.include)
              test: [/usr/sbin/nginx, -t, -q, -p, \(nginx.prefix), -c, \(nginx.conf)]
              reload: [/usr/sbin/nginx, -s, reload, -p, \(nginx.prefix), -c, \(nginx.conf)]
            ---
            apiVersion: tide/v1
            kind: Environment
            metadata: {name: prod}
            spec: {production: true}
            ---
            apiVersion: tide/v1
            kind: Analysis
            metadata: {name: synthetic}
            spec:
              initialDelay: 1s
              metrics:
                - name: through-nginx
                  provider: {probe: {url: "http://127.0.0.1:\(nginx.port)/", requests: 100, concurrency: 1, timeout: 15s}}
                  failureCondition: "result.errorRate > 0.01 || result.p99 > 10000"

            """
        func service(_ version: String, extraBackend: String = "") -> String {
            """
            apiVersion: tide/v1
            kind: Service
            metadata: {name: shop}
            spec:
              executor: edge
              version: "\(version)"
              environments: {prod: {}}
              config:
                nginx:
                  listen: \(nginx.port)
                  backends:
                    "1.0.0": "127.0.0.1:\(stable.port)"
                    "2.0.0": "127.0.0.1:\(flaky.port)"
                    "2.1.0": "127.0.0.1:\(healthy.port)"
                    "4.0.0": "no-such-host.invalid:9000"\(extraBackend)
              strategy:
                type: canary
                steps: [{setWeight: 10}, {analysis: synthetic}, {setWeight: 25}, {analysis: synthetic}, {setWeight: 50}]
              rollback: {automatic: true, writeBack: revert}

            """
        }
        _ = try await fixture.commit("shop 1.0.0", files: ["platform.yaml": platform, "shop.yaml": service("1.0.0")])
        let first = try await tide("reconcile")
        #expect(first.status == 0, "\(first.combined)")
        #expect(try nginx.get() == (200, "1.0.0"))

        // The flaky candidate: 10 % of 100 probe requests reach it, 3 of those fail → 3 % errors → rollback.
        let bad = try await fixture.commit("shop 2.0.0", files: ["shop.yaml": service("2.0.0")])
        let caught = try await tide("reconcile", "--watch")
        #expect(caught.status == 1, "\(caught.combined)")
        #expect(caught.combined.contains("analysis synthetic failed"), "\(caught.combined)")
        #expect(caught.combined.contains("\"errorRate\":0.03"), "\(caught.combined)")
        for _ in 0..<10 { #expect(try nginx.get() == (200, "1.0.0"), "all traffic back on stable") }
        let repository = try Repository.open(at: fixture.repoPath)
        let head = try repository.commit(try repository.resolveCommit(branch: nil))
        #expect(head.revertedCommit == bad, "tide wrote the revert of \(bad.short): \(head.summary)")
        let include = try String(contentsOfFile: nginx.include + "/tide-shop-prod.conf", encoding: .utf8)
        #expect(include.contains("127.0.0.1:\(stable.port)") && !include.contains("127.0.0.1:\(flaky.port)"))

        // The healthy one walks the steps and is promoted.
        _ = try await fixture.commit("shop 2.1.0", files: ["shop.yaml": service("2.1.0")])
        let walked = try await tide("reconcile", "--watch")
        #expect(walked.status == 0, "\(walked.combined)")
        #expect(walked.combined.contains("shop@prod: deployed 1.0.0 → 2.1.0"), "\(walked.combined)")
        for _ in 0..<10 { #expect(try nginx.get() == (200, "2.1.0")) }
        let history = try await tide("history", "--all", "--service", "shop", "--limit", "500").standardOutput
        let weights = history.split(separator: "\n").compactMap { line -> String? in
            guard line.contains("2.1.0"), let range = line.range(of: "setWeight ") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "%" })
        }
        #expect(Set(weights.filter { Int($0) != nil }) == ["10", "25", "50"], "\(history)")
        #expect(history.contains("analysis synthetic: passed"))

        // A backend address that is not one is refused with the revision, at its line: nothing is deployed.
        _ = try await fixture.commit(
            "shop 3.0.0",
            files: ["shop.yaml": service("3.0.0", extraBackend: "\n        \"3.0.0\": \"127.0.0.1:99999\"")])
        let invalid = try await tide("reconcile")
        #expect(invalid.status == 1, "\(invalid.combined)")
        #expect(
            invalid.combined.contains(
                "shop.yaml:16:18: Service 'shop': spec.config.nginx.backends.3.0.0: expected host:port (port "
                    + "1–65535) or unix:/path; nginx executor 'edge' would refuse the deployment"),
            "\(invalid.combined)")
        for _ in 0..<5 { #expect(try nginx.get() == (200, "2.1.0")) }
        _ = try await fixture.commit("shop back to 2.1.0", files: ["shop.yaml": service("2.1.0")])

        // A configuration nginx -t refuses (an upstream host that does not resolve) never reaches nginx: a new
        // service's first deployment fails, no file is left for it, and the old configuration keeps serving.
        let cart = service("4.0.0").replacingOccurrences(of: "name: shop", with: "name: cart")
            .replacingOccurrences(of: "listen: \(nginx.port)", with: "listen: \(try freeLoopbackPort())")
        _ = try await fixture.commit("cart 4.0.0", files: ["cart.yaml": cart])
        let refused = try await tide("reconcile")
        #expect(refused.status == 1)
        #expect(
            refused.combined.contains("nginx -t rejected the new configuration; the old one is kept"),
            "\(refused.combined)")
        #expect(!FileManager.default.fileExists(atPath: nginx.include + "/tide-cart-prod.conf"))
        for _ in 0..<5 { #expect(try nginx.get() == (200, "2.1.0")) }
    }

    @Test("shadow through nginx: the mirrored share of requests reaches the candidate, answers come from stable")
    func mirrorShare() async throws {
        let scratch = try TemporaryDirectory("tide-nginx-mirror")
        let nginx = try Nginx(in: scratch)
        let stable = try Backend(version: "1.0.0", flaky: false)
        let shadow = try Backend(version: "2.0.0", flaky: false)
        var routing = ExecutorManifest.Nginx(configDir: nginx.include)
        routing.test = ["/usr/sbin/nginx", "-t", "-q", "-p", nginx.prefix, "-c", nginx.conf]
        routing.reload = ["/usr/sbin/nginx", "-s", "reload", "-p", nginx.prefix, "-c", nginx.conf]
        let manifest = ExecutorManifest(
            name: "edge", location: SourceLocation(file: "x", line: 1, column: 1), kind: .nginx(routing), timeout: 30)
        let executor = NginxExecutor(manifest: manifest, workingDirectory: scratch.path)
        func mirror(_ share: Int) async throws {
            var request = ActionRequest(
                action: .mirror, service: "shop", environment: "prod", version: "2.0.0", previousVersion: "1.0.0",
                weight: share, revision: String(repeating: "a", count: 40), actionID: "shop.prod.mirror-\(share)",
                config: .object([
                    "nginx": .object([
                        "listen": .int(Int64(nginx.port)),
                        "backends": .object([
                            "1.0.0": .string("127.0.0.1:\(stable.port)"), "2.0.0": .string("127.0.0.1:\(shadow.port)"),
                        ]),
                    ])
                ]))
            request.traffic = .object(["mirror": .int(Int64(share))])
            let result = await executor.perform(request)
            #expect(result.succeeded, "\(result.summary)")
        }
        /// Requests the shadow got while 300 went through nginx. Mirrored copies are sent asynchronously: the
        /// count is read until it has not moved for a second (or reached 300).
        func mirrored() async throws -> Int {
            let before = try shadow.count()
            #expect(try nginx.get(times: 300) == [200: 300])
            var last = try shadow.count()
            var still = 0
            for _ in 0..<200 where still < 10 && last - before < 300 {
                try await Task.sleep(for: .milliseconds(100))
                let now = try shadow.count()
                still = now == last ? still + 1 : 0
                last = now
            }
            return last - before
        }
        try await mirror(30)
        let share = try await mirrored()
        // Binomial(300, 0.3): mean 90, standard deviation about 8; these bounds are more than 5 of them away.
        #expect((45...135).contains(share), "\(share) of 300 mirrored at 30 %")
        try await mirror(100)
        // Every request is mirrored; under a loaded machine nginx drops copies the small test backend did not
        // accept in time (seen: 189 of 300), but not the 70 % that sampling at 30 % leaves out (at most 135 get
        // through): more than that tells 100 % from 30 %.
        let all = try await mirrored()
        #expect((140...300).contains(all), "\(all) of 300 mirrored at 100 %")
        #expect(try nginx.get() == (200, "1.0.0"), "answers still come from stable")
    }
}
