import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization
public import TideManifest

/// `type: http`: each action is one `POST url` with the action request as JSON — the fields the plugin protocol
/// sends — and `Idempotency-Key: ACTION-ID`, so a retried action is known as the same one; with `secret`, the
/// body's HMAC-SHA256 in `X-Tide-Signature: sha256=HEX` (as GitHub signs webhooks).
///
/// 2xx is success; a JSON body may carry `output` (what a `measure` returns, as a plugin's answer does) and
/// `message` (kept with the result). 408, 425, 429, 5xx and failures to connect are transient (retried with the
/// retry policy; the circuit breaker counts them); another 4xx fails the action with the first KiB of the body.
/// Redirects are not followed (a redirect fails the action: POSTing an action elsewhere is not Tide's call); TLS
/// is verified against the system's authorities or `caFile`.
public struct HTTPExecutor: Executor {
    public let name: String
    public let spec: HTTPExecutorSpec
    public let timeout: Double
    let workingDirectory: String

    public init(manifest: ExecutorManifest, workingDirectory: String) throws {
        guard case .http(let spec) = manifest.kind else {
            throw ExecutorConfigurationError("executor '\(manifest.name)' is not an http executor")
        }
        self.name = manifest.name
        self.spec = spec
        self.timeout = manifest.timeout
        self.workingDirectory = workingDirectory
    }

    /// Bodies larger than this are cut (a message, an output): an action's answer is small.
    static let bodyLimit = 1 << 20

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let start = ContinuousClock.now
        func elapsed() -> Double {
            let d = ContinuousClock.now - start
            return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
        }
        let body = Data(request.jsonLine().dropLast().utf8)
        let prepared: HTTPClientRequest
        let client: HTTPClient
        do {
            prepared = try self.request(for: request, body: body)
            client = try HTTPExecutorClients.client(caFile: spec.caFile.map { resolve($0) })
        } catch {
            return ActionResult(outcome: .couldNotStart("\(error)"), duration: elapsed())
        }
        let response: HTTPClientResponse
        let answer: ByteBuffer
        // One deadline for the answer's head and its body: a server that sends a head and then stalls times out too.
        let work = Task {
            let response = try await client.execute(prepared, deadline: .now() + .milliseconds(Int64(timeout * 1000)))
            return (response, try await response.body.collect(upTo: Self.bodyLimit))
        }
        let expired = Mutex(false)
        // A second after the client's own deadline, so that the client's reason (a certificate it kept refusing
        // until then, say) is the one given when it has one.
        let alarm = Monotonic.after(seconds: timeout + 1) {
            expired.withLock { $0 = true }
            work.cancel()
        }
        defer { alarm.cancel() }
        do {
            (response, answer) = try await work.value
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            return ActionResult(outcome: .timedOut(seconds: timeout), duration: elapsed())
        } catch {
            if expired.withLock({ $0 }) {
                return ActionResult(outcome: .timedOut(seconds: timeout), duration: elapsed())
            }
            return ActionResult(outcome: Self.outcome(of: error, url: spec.url), duration: elapsed())
        }
        let text = String(buffer: answer)
        return Self.result(
            status: Int(response.status.code), body: text, location: response.headers.first(name: "Location"),
            url: spec.url, duration: elapsed())
    }

    /// The POST: JSON body, the action's id as idempotency key, the manifest's headers (secrets read now), the
    /// signature.
    func request(for action: ActionRequest, body: Data) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: spec.url)
        request.method = .POST
        for (name, value) in spec.headers.sorted(by: { $0.key < $1.key }) {
            switch value {
            case .text(let text): request.headers.replaceOrAdd(name: name, value: text)
            case .secret(let source):
                request.headers.replaceOrAdd(name: name, value: try SecretReading.read(source, what: "header \(name)"))
            }
        }
        request.headers.replaceOrAdd(name: "User-Agent", value: "tide")
        request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        request.headers.replaceOrAdd(name: "Accept", value: "application/json")
        request.headers.replaceOrAdd(name: "Idempotency-Key", value: action.actionID)
        request.headers.replaceOrAdd(name: "X-Tide-Action", value: action.action.rawValue)
        if let secret = spec.secret {
            let key = SymmetricKey(data: Data(try SecretReading.read(secret, what: "signing key").utf8))
            let mac = HMAC<SHA256>.authenticationCode(for: body, using: key)
            request.headers.replaceOrAdd(
                name: "X-Tide-Signature", value: "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        return request
    }

    /// What an answer means (see the type's comment).
    static func result(status: Int, body: String, location: String?, url: String, duration: Double) -> ActionResult {
        let shown = DatabaseURL.redacted(url)
        switch status {
        case 200..<300:
            var output = body
            var message = ""
            if let data = body.data(using: .utf8), let value = try? JSONDecoder().decode(JSONValue.self, from: data),
                case .object(let object) = value
            {
                output =
                    switch object["output"] {
                    case nil, .null?: ""
                    case .string(let text)?: text
                    case let other?: other.canonicalJSON
                    }
                if case .string(let text)? = object["message"] { message = text }
            }
            return ActionResult(outcome: .succeeded, standardOutput: output, standardError: message, duration: duration)
        case 408, 425, 429, 500..<600:
            return ActionResult(
                outcome: .unavailable("\(shown) answered \(status)\(firstLine(body))"), standardError: cut(body),
                duration: duration)
        case 300..<400:
            return ActionResult(
                outcome: .failed(
                    "\(shown) answered \(status), a redirect\(location.map { " to \(DatabaseURL.redacted($0))" } ?? ""); "
                        + "tide does not follow redirects: give the URL the action is for"),
                duration: duration)
        default:
            return ActionResult(
                outcome: .failed("\(shown) answered \(status)\(body.isEmpty ? "" : ": " + cut(body))"),
                standardError: cut(body), duration: duration)
        }
    }

    /// A failure before an answer: refused or lost connections are transient; a certificate that does not verify,
    /// or a URL the client cannot use, is not.
    static func outcome(of error: any Error, url: String) -> ActionResult.Outcome {
        let shown = DatabaseURL.redacted(url)
        let text = String(describing: error)
        if error is NIOSSLError || text.contains("NIOSSL") || text.contains("handshakeFailed")
            || text.contains("certificate")
        {
            return .failed("TLS with \(shown) failed: \(text)")
        }
        if let client = error as? HTTPClientError, [.invalidURL, .emptyHost, .emptyScheme].contains(client) {
            return .failed("cannot POST to \(shown): \(text)")
        }
        return .unavailable("cannot reach \(shown): \(text)")
    }

    /// The first KiB of a body, on one line.
    static func cut(_ body: String) -> String {
        let trimmed = body.trimmingCharacters(in: .whitespacesAndNewlines)
        let head =
            trimmed.utf8.count > 1024 ? String(decoding: trimmed.utf8.prefix(1024), as: UTF8.self) + "…" : trimmed
        return head.replacingOccurrences(of: "\n", with: " ")
    }

    private static func firstLine(_ body: String) -> String {
        let line = cut(body).prefix(200)
        return line.isEmpty ? "" : ": \(line)"
    }

    private func resolve(_ path: String) -> String {
        path.hasPrefix("/") ? path : (workingDirectory as NSString).appendingPathComponent(path)
    }
}

/// The clients of http executors: one trusting the system's authorities and one per `caFile`, for the life of the
/// process (connections are kept between actions). None follows redirects.
enum HTTPExecutorClients {
    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func client(caFile: String?) throws -> HTTPClient {
        let key = caFile ?? ""
        if let client = clients.withLock({ $0[key] }) { return client }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else {
                throw ExecutorConfigurationError("cannot read caFile \(caFile)")
            }
            tls.trustRoots = .file(caFile)
        }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.timeout.connect = .seconds(10)
        return clients.withLock { clients in
            if let client = clients[key] { return client }
            let client = HTTPClient(
                eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}

/// An executor whose manifest cannot make it (a wrong type, a file it needs missing).
public struct ExecutorConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Reading `{env: VARIABLE}` and `{file: PATH}` secrets when they are used — never stored, never logged.
public enum SecretReading {
    public static func read(_ source: PasswordSource, what: String) throws -> String {
        switch source {
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name] else {
                throw ExecutorConfigurationError("the variable \(name) (the \(what)) is not set")
            }
            return value
        case .file(let path):
            let resolved: String
            do {
                resolved = try SecretFiles.check(path)
            } catch {
                throw ExecutorConfigurationError("\(error)")
            }
            guard let text = try? String(contentsOfFile: resolved, encoding: .utf8) else {
                throw ExecutorConfigurationError("cannot read \(path) (the \(what))")
            }
            return text.trimmingCharacters(in: .newlines)
        }
    }
}
