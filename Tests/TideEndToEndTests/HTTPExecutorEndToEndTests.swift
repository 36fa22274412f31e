import Crypto
import Foundation
import Testing
import TideManifest
import TideTestSupport

/// The http executor through the release path: `tide reconcile` and `tide run` (from the state's directory, on a
/// repo behind file://), against a real HTTP server.
@Suite("End to end: the http executor through tide reconcile and tide run")
struct HTTPExecutorEndToEndTests {
    static func manifests(url: String, version: String) -> String {
        """
        apiVersion: tide/v1
        kind: Executor
        metadata: {name: deployer}
        spec:
          type: http
          url: "\(url)"
          timeout: 10s
          headers: {Authorization: {env: DEPLOY_TOKEN}}
          secret: {env: DEPLOY_SIGNING}
          retry: {limit: 2, backoff: 1s}
        ---
        apiVersion: tide/v1
        kind: Environment
        metadata: {name: prod}
        spec: {production: true}
        ---
        apiVersion: tide/v1
        kind: Service
        metadata: {name: web}
        spec: {executor: deployer, version: "\(version)", environments: {prod: {}}}

        """
    }

    static let environment = ["DEPLOY_TOKEN": "Bearer e2e-token", "DEPLOY_SIGNING": "e2e-signing-key"]

    /// The action names and versions the server received, in order.
    static func actions(_ server: ActionEndpointFixture) async throws -> [String] {
        try await server.received().map { received in
            let body = try JSONDecoder().decode([String: JSONValue].self, from: Data(received.body.utf8))
            guard case .string(let action)? = body["action"], case .string(let version)? = body["version"] else {
                return "?"
            }
            return "\(action) \(version)"
        }
    }

    @Test("tide reconcile deploys through POSTs, signed; a 503 is retried with the same Idempotency-Key")
    func reconcile() async throws {
        let server = try ActionEndpointFixture()
        let fixture = try await detached { try GitFixture() }
        let scratch = try TemporaryDirectory("tide-http-e2e")
        let state = scratch.appending("state.sqlite")
        try await fixture.commit(
            "web 1.0.0", files: ["tide.yaml": Self.manifests(url: server.url("/flaky"), version: "1.0.0")])
        let run = try await runProcess(
            TideBinary.path, ["reconcile", "--repo", "file://" + fixture.repoPath, "--state", state],
            in: scratch.path, environment: Self.environment)
        #expect(run.status == 0, "\(run.combined)")
        let received = try await server.received()
        #expect(try await Self.actions(server) == ["deploy 1.0.0", "deploy 1.0.0", "health 1.0.0", "health 1.0.0"])
        // Tried again after the 503: the same action, the same key.
        #expect(received[0].headers["idempotency-key"] == received[1].headers["idempotency-key"])
        #expect(received[0].headers["idempotency-key"]?.hasSuffix("-deploy") == true)
        for request in received {
            #expect(request.headers["authorization"] == "Bearer e2e-token")
            let mac = HMAC<SHA256>.authenticationCode(
                for: Data(request.body.utf8), using: SymmetricKey(data: Data("e2e-signing-key".utf8)))
            #expect(request.headers["x-tide-signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        }
        let status = try await runProcess(
            TideBinary.path, ["status", "--json", "--repo", "file://" + fixture.repoPath, "--state", state],
            in: scratch.path)
        #expect(status.standardOutput.contains(#""state" : "deployed""#), "\(status.standardOutput)")
        // Neither the token nor the signing key is in the state, the log or the output.
        let stored = try Data(contentsOf: URL(fileURLWithPath: state))
        #expect(stored.range(of: Data("e2e-token".utf8)) == nil)
        #expect(stored.range(of: Data("e2e-signing-key".utf8)) == nil)
        #expect(!run.combined.contains("e2e-token") && !run.combined.contains("e2e-signing-key"))
    }

    @Test("a 400 fails the deployment with the server's reason; tide run deploys the next commit by itself")
    func failureThenRun() async throws {
        let server = try ActionEndpointFixture()
        let fixture = try await detached { try GitFixture() }
        let scratch = try TemporaryDirectory("tide-http-e2e")
        let state = scratch.appending("state.sqlite")
        let repo = "file://" + fixture.repoPath
        try await fixture.commit(
            "web 1.0.0", files: ["tide.yaml": Self.manifests(url: server.url("/bad"), version: "1.0.0")])
        let failed = try await runProcess(
            TideBinary.path, ["reconcile", "--repo", repo, "--state", state], in: scratch.path,
            environment: Self.environment)
        #expect(failed.status == 1, "\(failed.combined)")
        let history = try await runProcess(
            TideBinary.path, ["history", "--repo", repo, "--state", state], in: scratch.path)
        #expect(
            history.standardOutput.contains("answered 400: version 9.9.9 is not in the registry"), "\(history.combined)"
        )
        #expect(try await Self.actions(server) == ["deploy 1.0.0"], "a client error is not retried")

        let daemon = try await TideDaemon(
            ["--repo", repo, "--state", state, "--interval", "1s"], in: scratch.path, environment: Self.environment,
            logDirectory: scratch.path)
        try await fixture.commit(
            "web 2.0.0", files: ["tide.yaml": Self.manifests(url: server.url("/ok"), version: "2.0.0")])
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, !(try await Self.actions(server)).contains("health 2.0.0") {
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(try await Self.actions(server) == ["deploy 1.0.0", "deploy 2.0.0", "health 2.0.0"], "\(daemon.log())")
        _ = await daemon.stop()
    }
}
