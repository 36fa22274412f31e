import Foundation
import Testing
import TideManifest
import TideTestSupport

@testable import TideExecutors

@Suite("TideExecutors: the http, probe and prometheus analysis providers against real servers")
struct HTTPMeasurementsTests {
    @Test("probe: error rate and latency percentiles over real requests")
    func probe() async throws {
        let server = try HTTPFixture()
        let flaky = await HTTPMeasurements.probe(
            url: server.url("/flaky"), requests: 50, concurrency: 4, timeout: 5, headers: ["X-Test": "1"])
        guard case .success(.object(let result)?) = flaky else {
            Issue.record("\(flaky)")
            return
        }
        #expect(result["requests"] == .int(50))
        #expect(result["errors"] == .int(15))
        #expect(result["errorRate"] == .double(0.3))
        guard case .double(let p50)? = result["p50"], case .double(let p99)? = result["p99"] else {
            Issue.record("no percentiles: \(result)")
            return
        }
        #expect(p50 > 0 && p50 <= p99 && p99 < 30000)  // a sanity bound: other tests load this machine

        let healthy = await HTTPMeasurements.probe(
            url: server.url("/ok"), requests: 20, concurrency: 2, timeout: 5, headers: [:])
        #expect((try? healthy.get())??.canonicalJSON.contains("\"errorRate\":0") == true, "\(healthy)")
    }

    @Test("probe: nothing answering is a measurement error, not a 100 % error rate")
    func probeNobody() async throws {
        let port = try { () throws -> Int in
            let server = try HTTPFixture()
            return server.port
        }()  // the fixture is gone: nothing listens there now
        let outcome = await HTTPMeasurements.probe(
            url: "http://127.0.0.1:\(port)/ok", requests: 3, concurrency: 1, timeout: 1, headers: [:])
        guard case .failure(let error) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(error.description.contains("no request to http://127.0.0.1:\(port)/ok was answered"))
    }

    @Test("http: JSON, a number, no data, an error status, a timeout")
    func http() async throws {
        let server = try HTTPFixture()
        let json = await HTTPMeasurements.http(url: server.url("/json"), headers: [:], timeout: 5)
        #expect(try json.get() == .object(["errors": .int(3), "total": .int(100), "ok": .bool(true)]))
        #expect(
            try await HTTPMeasurements.http(url: server.url("/number"), headers: [:], timeout: 5).get()
                == .double(0.004))
        #expect(try await HTTPMeasurements.http(url: server.url("/empty"), headers: [:], timeout: 5).get() == nil)
        let unavailable = await HTTPMeasurements.http(url: server.url("/status/503"), headers: [:], timeout: 5)
        #expect("\(unavailable)".contains("answered HTTP 503"))
        let slow = await HTTPMeasurements.http(url: server.url("/slow"), headers: [:], timeout: 0.3)
        guard case .failure = slow else {
            Issue.record("a 15 s answer with a 0.3 s timeout: \(slow)")
            return
        }
        // Hardening round two, addendum 2: the timeout covers the body. A head at once and then one byte every
        // 0.2 s held the pass (and the state lock) for the whole trickle.
        let started = ContinuousClock.now
        let trickle = await HTTPMeasurements.http(url: server.url("/trickle"), headers: [:], timeout: 1)
        #expect(ContinuousClock.now - started < .seconds(5), "took \(ContinuousClock.now - started)")
        #expect("\(trickle)".contains("no whole answer within 1s"), "\(trickle)")
    }

    @Test("prometheus: scalars, vectors, empty vectors and bad queries against a real Prometheus")
    func prometheus() async throws {
        try await withPrometheus { (address: String) async throws -> Void in
            let vector = await HTTPMeasurements.prometheus(address: address, query: "vector(0.003)", timeout: 5)
            #expect(try vector.get() == .array([.double(0.003)]))
            let scalar = await HTTPMeasurements.prometheus(
                address: address, query: "scalar(vector(2)) + 1", timeout: 5)
            #expect(try scalar.get() == .double(3))
            let empty = await HTTPMeasurements.prometheus(
                address: address, query: "up{job=\"nothing-scrapes-this\"}", timeout: 5)
            #expect(try empty.get() == nil, "no series is no data")
            let bad = await HTTPMeasurements.prometheus(address: address, query: "sum(", timeout: 5)
            #expect("\(bad)".contains("Prometheus query failed"), "\(bad)")
        }
    }

    /// Starts Prometheus (Debian's package) on a free loopback port with nothing to scrape, waits until it is
    /// ready, and stops it afterwards, also when the body fails.
    func withPrometheus(_ body: (String) async throws -> Void) async throws {
        let binary = "/usr/bin/prometheus"
        try #require(
            FileManager.default.isExecutableFile(atPath: binary), "prometheus is installed by scripts/install-deps")
        let scratch = try TemporaryDirectory("tide-prometheus")
        let config = scratch.appending("prometheus.yml")
        try Data("global: {evaluation_interval: 1m}\n".utf8).write(to: URL(fileURLWithPath: config))
        let port = try freeLoopbackPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--config.file", config, "--storage.tsdb.path", scratch.appending("data"),
            "--web.listen-address", "127.0.0.1:\(port)",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        let address = "http://127.0.0.1:\(port)"
        var ready = false
        for _ in 0..<150 where !ready {
            if let (status, _) = try? await HTTPMeasurements.get(address + "/-/ready", headers: [:], timeout: 1),
                status == 200
            {
                ready = true
            } else {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        try #require(ready, "Prometheus did not become ready on \(address)")
        try await body(address)
    }

}
