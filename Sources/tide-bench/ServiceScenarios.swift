import Foundation

/// The service scenarios run the real `tide` binary (next to this one) as `tide run` against a local bare
/// repository served as a `file://` remote, with a command executor that logs when each action starts.
struct ServiceBench {
    let scratch: Scratch
    let tide: String
    let bare: String
    let work: String
    let log: String
    let secret = "bench-secret"

    init(scratch: Scratch) throws {
        self.scratch = scratch
        tide =
            (CommandLine.arguments[0].hasPrefix("/")
            ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0])
            .replacingOccurrences(of: "tide-bench", with: "tide")
        bare = scratch.file("config.git")
        work = scratch.file("work")
        log = scratch.file("executor.log")
        let executor = scratch.file("executor.sh")
        try """
        #!/bin/sh
        echo "$TIDE_ACTION $TIDE_VERSION $(date +%s.%N)" >> "\(log)"

        """.write(toFile: executor, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executor)
        try secret.write(toFile: scratch.file("secret"), atomically: true, encoding: .utf8)
        _ = try SyntheticRepo.run("/usr/bin/git", ["init", "-q", "--bare", "-b", "main", bare])
        _ = try SyntheticRepo.run("/usr/bin/git", ["clone", "-q", bare, work])
        try """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: local}
        spec: {type: command, command: ["\(executor)"], timeout: 30s}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}

        """.write(toFile: work + "/base.yaml", atomically: true, encoding: .utf8)
        try commit(version: "0")
    }

    func commit(version: String, push: Bool = true) throws {
        try """
        apiVersion: tide/v1
        kind: Service
        metadata: {name: api}
        spec: {executor: local, version: "\(version)", environments: {prod: {}}}

        """.write(toFile: work + "/api.yaml", atomically: true, encoding: .utf8)
        for arguments in [
            ["add", "-A"], ["-c", "user.name=Bench", "-c", "user.email=b@example.com", "commit", "-q", "-m", version],
        ] {
            _ = try SyntheticRepo.run("/usr/bin/git", ["-C", work] + arguments)
        }
        if push { try self.push() }
    }

    func push() throws {
        _ = try SyntheticRepo.run("/usr/bin/git", ["-C", work, "push", "-q", "origin", "main"])
    }

    /// Starts `tide run` and waits until it has deployed version 0.
    func start(port: Int, interval: String) async throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tide)
        process.arguments = [
            "run", "--repo", "file://" + bare, "--state", scratch.file("state.sqlite"), "--listen",
            "127.0.0.1:\(port)", "--interval", interval, "--webhook-secret-file", scratch.file("secret"),
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: scratch.path)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        guard try await waitForAction("deploy 0", timeout: 60) != nil else {
            process.terminate()
            throw BenchError("tide run did not deploy the first version")
        }
        return process
    }

    /// The time (seconds since 1970) the executor logged `prefix`, waiting for it up to `timeout` seconds.
    func waitForAction(_ prefix: String, timeout: Double) async throws -> Double? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix + " ") }) {
                return Double(line.split(separator: " ").last ?? "")
            }
            try await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// A signed generic webhook for main, through curl.
    func notify(port: Int) throws {
        let body = scratch.file("body.json")
        try #"{"ref":"refs/heads/main"}"#.write(toFile: body, atomically: true, encoding: .utf8)
        let digest = try SyntheticRepo.run("/usr/bin/openssl", ["dgst", "-sha256", "-hmac", secret, "-hex", body])
        let hex = digest.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        _ = try SyntheticRepo.run(
            "/usr/bin/curl",
            [
                "-sf", "-o", "/dev/null", "-X", "POST", "-H", "X-Tide-Signature: sha256=\(hex)", "--data-binary",
                "@\(body)", "http://127.0.0.1:\(port)/hooks/generic",
            ])
    }
}

/// `webhookLatency`: a push to the bare repository, then a signed webhook; the time from the start of the push to
/// the executor's first call for the new version. p50 and p95 over `pushes`.
struct WebhookLatencyScenario {
    var pushes: Int

    func run() async throws -> Result {
        let scratch = try Scratch("webhook")
        defer { scratch.remove() }
        let bench = try ServiceBench(scratch: scratch)
        let port = try freePort()
        let daemon = try await bench.start(port: port, interval: "1h")
        defer { daemon.terminate() }
        var latencies: [Double] = []
        for n in 1...pushes {
            try bench.commit(version: "\(n)", push: false)
            let start = Date().timeIntervalSince1970
            try bench.push()
            try bench.notify(port: port)
            guard let called = try await bench.waitForAction("deploy \(n)", timeout: 30) else {
                throw BenchError("version \(n) was not deployed within 30 s")
            }
            latencies.append(called - start)
        }
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { Percentile.of(sorted, p) }
        return Result(
            seconds: percentile(0.95), runs: latencies,
            detail: String(
                format: "push + webhook → first executor call: p50 %.0f ms, p95 %.0f ms, max %.0f ms over %d pushes",
                percentile(0.5) * 1000, percentile(0.95) * 1000, (sorted.last ?? 0) * 1000, pushes))
    }
}

/// `idleDaemon`: `tide run --interval 1s` on an unchanging `file://` remote (a fetch and a pass every second) for
/// `seconds`: CPU of the daemon and its fetch children as a share of one core, and its resident memory sampled
/// every tenth of the run (flat means no leak).
struct IdleDaemonScenario {
    var seconds: Double

    func run() async throws -> Result {
        let scratch = try Scratch("idle")
        defer { scratch.remove() }
        let bench = try ServiceBench(scratch: scratch)
        let port = try freePort()
        let daemon = try await bench.start(port: port, interval: "1s")
        defer { daemon.terminate() }
        try await Task.sleep(for: .seconds(5))  // past start-up
        let pid = daemon.processIdentifier
        let before = try cpuTicks(pid)
        var rss: [Double] = []
        for _ in 0..<10 {
            rss.append(try residentMegabytes(pid))
            try await Task.sleep(for: .milliseconds(Int(seconds * 100)))
        }
        rss.append(try residentMegabytes(pid))
        let used = Double(try cpuTicks(pid) - before) / Double(sysconf(Int32(_SC_CLK_TCK)))
        let share = used / seconds * 100
        return Result(
            seconds: share, runs: rss,
            detail: String(
                format: "CPU %.2f %% of one core over %.0f s (daemon + fetch children); RSS %.1f → %.1f MB (max %.1f)",
                share, seconds, rss.first ?? 0, rss.last ?? 0, rss.max() ?? 0))
    }

    /// utime + stime of the process and its reaped children, in clock ticks.
    private func cpuTicks(_ pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        // After the command: state is field 3, so utime (14), stime, cutime, cstime are at 11...14 here.
        return fields[11...14].compactMap { Int($0) }.reduce(0, +)
    }

    private func residentMegabytes(_ pid: Int32) throws -> Double {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}

func freePort() throws -> Int {
    let output = try SyntheticRepo.run(
        "/usr/bin/python3",
        ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    guard let port = Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw BenchError("no free port: \(output)")
    }
    return port
}

/// Percentiles of measured latencies.
enum Percentile {
    /// The `p` percentile (0…1) of `sorted` (ascending, not empty): the smallest value at or above that share.
    static func of(_ sorted: [Double], _ p: Double) -> Double {
        sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
    }
}
