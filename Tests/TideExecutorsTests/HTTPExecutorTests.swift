import Crypto
import Foundation
import Testing
import TideExecutors
import TideManifest
import TideTestSupport

@Suite("TideExecutors: the http executor against a real HTTP server")
struct HTTPExecutorTests {
    static func manifest(
        _ url: String, timeout: Double = 10, headers: [String: HTTPExecutorSpec.HeaderValue] = [:],
        secret: PasswordSource? = nil, caFile: String? = nil
    ) -> ExecutorManifest {
        var spec = HTTPExecutorSpec(url: url)
        spec.headers = headers
        spec.secret = secret
        spec.caFile = caFile
        return ExecutorManifest(
            name: "deployer", location: SourceLocation(file: "x.yaml", line: 1, column: 1), kind: .http(spec),
            timeout: timeout)
    }

    static func request(_ action: ExecutorAction = .deploy, id: String = "checkout.prod.1a2b3c4d5e6f.1-deploy")
        -> ActionRequest
    {
        ActionRequest(
            action: action, service: "checkout", environment: "prod", version: "2.0.0", previousVersion: "1.0.0",
            weight: 0, revision: "1a2b3c4d5e6f", actionID: id, config: .object(["replicas": .int(3)]))
    }

    static func perform(_ manifest: ExecutorManifest, _ request: ActionRequest = request()) async throws
        -> ActionResult
    {
        let executor = try DefaultExecutorFactory(workingDirectory: "/").makeExecutor(for: manifest)
        return await executor.perform(request)
    }

    @Test("2xx: the action as JSON, signed, with its id as Idempotency-Key and the headers' secrets read when sent")
    func success() async throws {
        let server = try ActionEndpointFixture()
        setenv("TIDE_TEST_HTTP_TOKEN", "Bearer s3cret-token", 1)
        setenv("TIDE_TEST_HTTP_SIGNING", "signing-key", 1)
        let manifest = Self.manifest(
            server.url("/ok"),
            headers: [
                "Authorization": .secret(.environment("TIDE_TEST_HTTP_TOKEN")), "X-Team": .text("payments"),
            ], secret: .environment("TIDE_TEST_HTTP_SIGNING"))
        let result = try await Self.perform(manifest)
        #expect(result.succeeded, "\(result.summary)")
        #expect(result.standardOutput == "0.01")
        #expect(result.standardError == "done by the fake")
        let received = try #require(try await server.received().first)
        #expect(received.path == "/ok")
        #expect(received.headers["content-type"] == "application/json")
        #expect(received.headers["idempotency-key"] == "checkout.prod.1a2b3c4d5e6f.1-deploy")
        #expect(received.headers["x-tide-action"] == "deploy")
        #expect(received.headers["authorization"] == "Bearer s3cret-token")
        #expect(received.headers["x-team"] == "payments")
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(received.body.utf8), using: SymmetricKey(data: Data("signing-key".utf8)))
        #expect(received.headers["x-tide-signature"] == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        // The body is the plugin protocol's request: the same fields.
        let sent = try JSONDecoder().decode(ActionRequest.self, from: Data(received.body.utf8))
        #expect(sent == Self.request())
        #expect(!received.body.hasSuffix("\n"))
    }

    @Test("503 is transient; tried again with the same action id, the 200 that follows succeeds")
    func transientThenSuccess() async throws {
        let server = try ActionEndpointFixture()
        let manifest = Self.manifest(server.url("/flaky"))
        let first = try await Self.perform(manifest)
        #expect(!first.succeeded)
        #expect(first.isTransient, "\(first.summary)")
        #expect(first.summary.contains("answered 503"), "\(first.summary)")
        let second = try await Self.perform(manifest)
        #expect(second.succeeded, "\(second.summary)")
        let keys = try await server.received().map { $0.headers["idempotency-key"] }
        #expect(keys == ["checkout.prod.1a2b3c4d5e6f.1-deploy", "checkout.prod.1a2b3c4d5e6f.1-deploy"])
    }

    @Test("408, 425, 429 and 5xx are transient; 404 and 400 fail the action with the first KiB of the body")
    func statuses() async throws {
        let server = try ActionEndpointFixture()
        for status in [408, 425, 429, 500, 502, 504] {
            let result = try await Self.perform(Self.manifest(server.url("/status/\(status)")))
            #expect(result.isTransient, "\(status): \(result.summary)")
        }
        let missing = try await Self.perform(Self.manifest(server.url("/status/404")))
        #expect(!missing.isTransient && !missing.succeeded, "\(missing.summary)")
        let bad = try await Self.perform(Self.manifest(server.url("/bad")))
        #expect(!bad.isTransient && !bad.succeeded)
        #expect(bad.summary.contains("answered 400: version 9.9.9 is not in the registry"), "\(bad.summary)")
        #expect(bad.summary.utf8.count < 1300, "the body is cut to 1 KiB: \(bad.summary.utf8.count) bytes")
    }

    @Test("a server that hangs, or sends a head and stalls the body: the action times out (transient)")
    func hang() async throws {
        let server = try ActionEndpointFixture()
        for path in ["/hang", "/stall"] {
            let start = ContinuousClock.now
            let result = try await Self.perform(Self.manifest(server.url(path), timeout: 1))
            #expect(result.isTimeout, "\(path): \(result.summary)")
            #expect(result.isTransient)
            #expect(ContinuousClock.now - start < .seconds(20), "\(path)")
        }
    }

    @Test("nothing listening: transient; a redirect is not followed and fails the action")
    func refusedAndRedirect() async throws {
        let port = try freeLoopbackPort()
        let refused = try await Self.perform(Self.manifest("http://127.0.0.1:\(port)/deploy"))
        #expect(refused.isTransient, "\(refused.summary)")
        let server = try ActionEndpointFixture()
        let redirected = try await Self.perform(Self.manifest(server.url("/redirect")))
        #expect(!redirected.succeeded && !redirected.isTransient, "\(redirected.summary)")
        #expect(redirected.summary.contains("does not follow redirects"), "\(redirected.summary)")
        #expect(try await server.received().map(\.path) == ["/redirect"])
    }

    @Test("a secret that cannot be read: nothing is sent, and the message names the variable, not a value")
    func missingSecret() async throws {
        let server = try ActionEndpointFixture()
        unsetenv("TIDE_TEST_HTTP_MISSING")
        let result = try await Self.perform(
            Self.manifest(
                server.url("/ok"), headers: ["Authorization": .secret(.environment("TIDE_TEST_HTTP_MISSING"))]))
        #expect(!result.succeeded)
        #expect(result.summary.contains("TIDE_TEST_HTTP_MISSING"), "\(result.summary)")
        #expect(try await server.received().isEmpty)
    }

    @Test("HTTPS: verified against caFile; without it, the private CA is not trusted and the action fails")
    func tls() async throws {
        let files = try TLSFiles()
        let server = try ActionEndpointFixture(certificate: files.certificate, key: files.key)
        let trusted = try await Self.perform(
            Self.manifest(server.url("/ok", host: "localhost"), caFile: files.authority))
        #expect(trusted.succeeded, "\(trusted.summary)")
        let untrusted = try await Self.perform(Self.manifest(server.url("/ok", host: "localhost")))
        #expect(!untrusted.succeeded && !untrusted.isTransient, "\(untrusted.summary)")
        #expect(untrusted.summary.contains("TLS"), "\(untrusted.summary)")
    }
}
