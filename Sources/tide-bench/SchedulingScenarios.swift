import Foundation

/// The scheduling scenarios: the real `tide run` on a `file://` remote with a push of `services` canary rollouts
/// (each executor action takes half a second, `--concurrency 16`), and people or pushes arriving while it runs.
struct SchedulingBench {
    let bench: ServiceBench
    let services: Int

    init(scratch: Scratch, services: Int) throws {
        bench = try ServiceBench(scratch: scratch)
        self.services = services
        let executor = scratch.file("slow.sh")
        // Logs when each action starts, then takes half a second.
        try """
        #!/bin/sh
        echo "$TIDE_ACTION $TIDE_SERVICE $TIDE_VERSION $(date +%s.%N)" >> "\(bench.log)"
        sleep 0.5

        """.write(toFile: executor, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: executor)
        try """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: slow}
        spec: {type: command, command: ["\(executor)"], timeout: 30s}

        """.write(toFile: bench.work + "/slow.yaml", atomically: true, encoding: .utf8)
        try writeServices(version: "1")
        try bench.commit(version: "0")
    }

    /// The push's services, each a canary of three weights.
    func writeServices(version: String) throws {
        var text = ""
        for n in 0..<services {
            text += """
                ---
                apiVersion: tide/v1
                kind: Service
                metadata: {name: svc-\(n)}
                spec:
                  executor: slow
                  version: "\(version)"
                  environments: {prod: {}}
                  strategy: {type: canary, steps: [{setWeight: 25}, {setWeight: 50}, {setWeight: 75}]}

                """
        }
        try text.write(toFile: bench.work + "/push.yaml", atomically: true, encoding: .utf8)
    }

    /// Starts `tide run` and waits until every service runs version 1.
    func start(port: Int) async throws -> Process {
        let daemon = try await bench.start(port: port, interval: "1h")
        for n in 0..<services {
            guard try await bench.waitForAction("deploy svc-\(n) 1", timeout: 120) != nil else {
                daemon.terminate()
                throw BenchError("svc-\(n) 1 was not deployed within 120 s")
            }
        }
        try await Task.sleep(for: .seconds(2))
        return daemon
    }

    /// A scratch directory, `tide run` started on it with every service at version 1, then version 2 pushed:
    /// `body` measures while the push's rollouts run.
    static func duringAPush(
        _ name: String, services: Int, _ body: (SchedulingBench, Int) async throws -> Result
    ) async throws -> Result {
        let scratch = try Scratch(name)
        defer { scratch.remove() }
        let setup = try SchedulingBench(scratch: scratch, services: services)
        let port = try freePort()
        let daemon = try await setup.start(port: port)
        defer { daemon.terminate() }
        try setup.pushEverything(port: port)
        return try await body(setup, port)
    }

    /// Pushes version 2 of every service and announces it.
    func pushEverything(port: Int) throws {
        try writeServices(version: "2")
        try bench.commit(version: "0")
        try bench.notify(port: port)
    }

    func lines() -> [Substring] {
        ((try? String(contentsOfFile: bench.log, encoding: .utf8)) ?? "").split(separator: "\n")
    }

    /// Runs `tide ARGS` against the daemon's state; its wall time in seconds and its output.
    func tide(_ arguments: [String]) throws -> (seconds: Double, output: String) {
        let start = ContinuousClock.now
        let output = try SyntheticRepo.run(
            bench.tide,
            arguments + ["--repo", "file://" + bench.bare, "--state", bench.scratch.file("state.sqlite")],
            in: bench.scratch.path)
        return (seconds(ContinuousClock.now - start), output)
    }
}

/// `operatorLatency`: during a 50-service push, `tide pause` for services whose rollout is under way, one after
/// another: the time from typing the verb to its answer (the pause carried out), p50 and p95 over `requests`.
struct OperatorLatencyScenario {
    var services: Int
    var requests: Int

    func run() async throws -> Result {
        try await SchedulingBench.duringAPush("operator", services: services) { setup, _ in
            try await measure(setup)
        }
    }

    private func measure(_ setup: SchedulingBench) async throws -> Result {
        var latencies: [Double] = []
        var paused: Set<String> = []
        let deadline = Date().addingTimeInterval(120)
        while latencies.count < requests && Date() < deadline {
            // A service whose canary started and has not promoted yet.
            let lines = setup.lines()
            let started = Set(
                lines.filter { $0.hasPrefix("set-weight ") && $0.contains(" 2 ") }.map {
                    String($0.split(separator: " ")[1])
                })
            let promoted = Set(lines.filter { $0.hasPrefix("promote ") }.map { String($0.split(separator: " ")[1]) })
            guard let target = started.subtracting(promoted).subtracting(paused).sorted().first else {
                try await Task.sleep(for: .milliseconds(20))
                continue
            }
            paused.insert(target)
            let (took, _) = try setup.tide(["pause", target, "--env", "prod"])
            latencies.append(took)
        }
        guard !latencies.isEmpty else { throw BenchError("no rollout was under way to pause") }
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { Percentile.of(sorted, p) }
        return Result(
            seconds: percentile(0.95), runs: latencies,
            detail: String(
                format: "tide pause during a %d-service push → its answer: p50 %.0f ms, p95 %.0f ms, max %.0f ms over "
                    + "%d requests", services, percentile(0.5) * 1000, percentile(0.95) * 1000,
                (sorted.last ?? 0) * 1000, latencies.count))
    }
}

/// `pushDuringPush`: while a 50-service push's rollouts run, a push of another service and its webhook: the time
/// from the push to that service's first executor call, over `pushes` pushes.
struct PushDuringPushScenario {
    var services: Int
    var pushes: Int

    func run() async throws -> Result {
        try await SchedulingBench.duringAPush("pushpush", services: services) { setup, port in
            try await measure(setup, port: port)
        }
    }

    private func measure(_ setup: SchedulingBench, port: Int) async throws -> Result {
        guard try await setup.bench.waitForAction("set-weight svc-0 2", timeout: 30) != nil else {
            throw BenchError("the push's rollouts did not start")
        }
        var latencies: [Double] = []
        for n in 1...pushes {
            try setup.bench.commit(version: "\(n)", push: false)
            let start = Date().timeIntervalSince1970
            try setup.bench.push()
            try setup.bench.notify(port: port)
            guard let called = try await setup.bench.waitForAction("deploy \(n)", timeout: 60) else {
                throw BenchError("api \(n) was not deployed within 60 s")
            }
            latencies.append(called - start)
        }
        // The figure means something only while the push's rollouts still ran.
        let promoted = setup.lines().filter { $0.hasPrefix("promote svc-") && $0.contains(" 2 ") }.count
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double { Percentile.of(sorted, p) }
        return Result(
            seconds: percentile(0.95), runs: latencies,
            detail: String(
                format: "push + webhook during a %d-service push → first executor call: p50 %.0f ms, p95 %.0f ms, "
                    + "max %.0f ms over %d pushes; %d of the %d rollouts had promoted by then", services,
                percentile(0.5) * 1000, percentile(0.95) * 1000, (sorted.last ?? 0) * 1000, pushes, promoted, services))
    }
}
