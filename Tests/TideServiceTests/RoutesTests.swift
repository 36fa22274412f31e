import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing
import TideTestSupport

@testable import TideService

/// The routes of `tide run` in process (HummingbirdTesting's router framework): what each answers, without a
/// server or a repository. The end-to-end tests (ServiceTests) run the same routes in a real `tide run`.
@Suite("TideService: the HTTP routes, in process")
struct RoutesTests {
    static let secret = Array("route-test-secret".utf8)

    static func application(secrets: WebhookSecrets? = nil, maximumBody: Int = 1 << 20) -> some ApplicationProtocol {
        let configuration = DaemonConfiguration(webhookSecrets: secrets, maximumWebhookBody: maximumBody)
        let store = InMemoryStateStore()
        let logger = Logger(label: "tide-test")
        let metrics = DaemonMetrics()
        let loop = PassLoop(
            configuration: configuration, source: nil, store: store, channel: nil, metrics: metrics, logger: logger,
            makeReconciler: { _ in throw FixtureError("no repository in this test") })
        return Application(
            router: buildRouter(
                loop: loop, source: nil, store: store, metrics: metrics, configuration: configuration, logger: logger))
    }

    @Test("a peer is an IPv4 address or an IPv6 /64, however the address is written")
    func peers() {
        #expect(ConnectionLimits.peer("127.0.0.1") == "127.0.0.1")
        let one = ConnectionLimits.peer("2001:db8::5")
        #expect(one == "2001:db8:0:0::/64")
        #expect(ConnectionLimits.peer("2001:db8:0:0:ffff::6") == one)
        #expect(ConnectionLimits.peer("2001:0DB8:0000:0000:1:2:3:4") == one)
        #expect(ConnectionLimits.peer("2001:db8:0:1::5") != one)
        #expect(ConnectionLimits.peer("::1") == "0:0:0:0::/64")
    }

    @Test("/healthz answers; /readyz says what is missing (no revision loaded) with 503; /metrics is Prometheus text")
    func health() async throws {
        try await Self.application().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "ok\n")
            }
            try await client.execute(uri: "/readyz", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(String(buffer: response.body).contains("no revision loaded yet"))
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
            }
        }
    }

    @Test("webhooks: 404 without a secret; 401 forged; 413 too large; 200 for a signed push; a replayed delivery 202")
    func webhooks() async throws {
        try await Self.application().test(.router) { client in
            try await client.execute(uri: "/hooks/github", method: .post, body: ByteBuffer(string: "{}")) {
                #expect($0.status == .notFound)
            }
        }
        let secrets = WebhookSecrets(secrets: [.github: Self.secret, .generic: Self.secret])
        try await Self.application(secrets: secrets, maximumBody: 256).test(.router) { client in
            let body = #"{"ref":"refs/heads/main"}"#
            let signature = WebhookVerifier.signature(body: Array(body.utf8), secret: Self.secret)
            func headers(_ signature: String, delivery: String) -> HTTPFields {
                var fields = HTTPFields()
                fields[HTTPField.Name("X-Hub-Signature-256")!] = signature
                fields[HTTPField.Name("X-GitHub-Event")!] = "push"
                fields[HTTPField.Name("X-GitHub-Delivery")!] = delivery
                return fields
            }
            try await client.execute(
                uri: "/hooks/github", method: .post,
                headers: headers("sha256=" + String(repeating: "0", count: 64), delivery: "d0"),
                body: ByteBuffer(string: body)
            ) { #expect($0.status == .unauthorized) }
            try await client.execute(
                uri: "/hooks/github", method: .post, headers: headers(signature, delivery: "d1"),
                body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .ok)
                #expect(String(buffer: response.body) == "fetch and pass started\n")
            }
            try await client.execute(
                uri: "/hooks/github", method: .post, headers: headers(signature, delivery: "d1"),
                body: ByteBuffer(string: body)
            ) { response in
                #expect(response.status == .accepted)
                #expect(String(buffer: response.body).contains("was seen before"))
            }
            let large = String(repeating: " ", count: 300) + body
            try await client.execute(
                uri: "/hooks/github", method: .post,
                headers: headers(
                    WebhookVerifier.signature(body: Array(large.utf8), secret: Self.secret), delivery: "d2"),
                body: ByteBuffer(string: large)
            ) { #expect($0.status == .contentTooLarge) }
        }
    }
}
