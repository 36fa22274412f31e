import Crypto
import Foundation

/// The providers whose push notifications `tide run` takes, each on its own path (`/hooks/PROVIDER`).
public enum WebhookProvider: String, Sendable, CaseIterable {
    case github, gitlab, generic
}

/// The secrets webhooks are checked with, read from `--webhook-secret-file`: either one line (the secret of every
/// provider) or lines `PROVIDER: SECRET`. Never logged; kept as bytes.
public struct WebhookSecrets: Sendable {
    let secrets: [WebhookProvider: [UInt8]]

    /// Empty secrets are left out (their providers' webhooks are refused).
    public init(secrets: [WebhookProvider: [UInt8]]) {
        self.secrets = secrets.filter { !$0.value.isEmpty }
    }

    public init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw WebhookError.configuration("--webhook-secret-file: cannot read \(file)")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !lines.isEmpty else { throw WebhookError.configuration("--webhook-secret-file: \(file) is empty") }
        var secrets: [WebhookProvider: [UInt8]] = [:]
        let perProvider = lines.allSatisfy { line in
            WebhookProvider.allCases.contains { line.hasPrefix($0.rawValue + ":") }
        }
        if perProvider {
            for line in lines {
                let colon = line.firstIndex(of: ":")!  // every line has one (checked above)
                guard let provider = WebhookProvider(rawValue: String(line[..<colon])) else { continue }
                let secret = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                // An empty secret would make an empty GitLab token, or an HMAC with an empty key, that anyone can
                // give: a pass for every caller.
                guard !secret.isEmpty else {
                    throw WebhookError.configuration(
                        "--webhook-secret-file: \(file): '\(provider.rawValue):' has no secret; give one, or leave "
                            + "the line out (that provider's webhooks are then refused)")
                }
                guard secrets[provider] == nil else {
                    throw WebhookError.configuration(
                        "--webhook-secret-file: \(file): '\(provider.rawValue):' is given twice")
                }
                secrets[provider] = Array(secret.utf8)
            }
        } else {
            guard lines.count == 1 else {
                throw WebhookError.configuration(
                    "--webhook-secret-file: \(file) has \(lines.count) lines: give one secret, or one "
                        + "'PROVIDER: SECRET' line per provider (github, gitlab, generic)")
            }
            for provider in WebhookProvider.allCases { secrets[provider] = Array(lines[0].utf8) }
        }
        self.secrets = secrets
    }

    /// The provider's secret; never an empty one.
    func secret(_ provider: WebhookProvider) -> [UInt8]? { secrets[provider].flatMap { $0.isEmpty ? nil : $0 } }

    /// `sha256=HEX`, the signature `provider`'s endpoint expects for `body` (what `hooks/post-receive` sends).
    public func signature(for body: [UInt8], provider: WebhookProvider = .generic) -> String? {
        secret(provider).map { WebhookVerifier.signature(body: body, secret: $0) }
    }
}

public enum WebhookError: Error, CustomStringConvertible {
    case configuration(String)
    public var description: String {
        switch self {
        case .configuration(let message): message
        }
    }
}

/// What a webhook request asks for, once it is verified.
enum WebhookVerdict: Equatable {
    /// A push to `branch` (nil: the payload named none, any branch).
    case push(branch: String?, delivery: String?)
    /// GitHub's ping, or another event that needs no pass.
    case ping
    case ignored(String)
    case unauthorized(String)
    case malformed(String)
}

/// Checks a webhook request: the signature over the raw body, then the payload. Pure: no I/O, so every case is
/// tested directly.
///
/// What must never happen: a pass started by a request whose signature is missing or wrong; a comparison that
/// leaks how much of a signature matched (`isValidAuthenticationCode` and the token check run in constant time).
enum WebhookVerifier {
    static func verify(
        provider: WebhookProvider, headers: [String: String], body: [UInt8], secret: [UInt8]
    ) -> WebhookVerdict {
        func header(_ name: String) -> String? { headers[name.lowercased()] }
        switch provider {
        case .github:
            guard let signature = header("X-Hub-Signature-256") else {
                return .unauthorized("no X-Hub-Signature-256 header")
            }
            guard validHMAC(signature, body: body, secret: secret) else {
                return .unauthorized("X-Hub-Signature-256 does not match the body")
            }
            let event = header("X-GitHub-Event") ?? "push"
            if event == "ping" { return .ping }
            guard event == "push" else { return .ignored("GitHub event '\(event)' starts nothing") }
            return pushPayload(body, delivery: header("X-GitHub-Delivery"))
        case .gitlab:
            guard let token = header("X-Gitlab-Token") else { return .unauthorized("no X-Gitlab-Token header") }
            guard constantTimeEqual(Array(token.utf8), secret) else {
                return .unauthorized("X-Gitlab-Token is not the configured secret")
            }
            let event = header("X-Gitlab-Event") ?? "Push Hook"
            guard event == "Push Hook" else { return .ignored("GitLab event '\(event)' starts nothing") }
            return pushPayload(body, delivery: header("X-Gitlab-Event-UUID") ?? header("Idempotency-Key"))
        case .generic:
            guard let signature = header("X-Tide-Signature") else { return .unauthorized("no X-Tide-Signature header") }
            guard validHMAC(signature, body: body, secret: secret) else {
                return .unauthorized("X-Tide-Signature does not match the body")
            }
            return pushPayload(body, delivery: header("X-Tide-Delivery"))
        }
    }

    /// `sha256=HEX`, the HMAC-SHA256 of `body` under `secret`, compared in constant time.
    static func validHMAC(_ header: String, body: [UInt8], secret: [UInt8]) -> Bool {
        guard header.hasPrefix("sha256="), let code = unhex(header.dropFirst(7)), code.count == 32 else {
            return false
        }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: body, using: SymmetricKey(data: secret))
    }

    static func signature(body: [UInt8], secret: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        // Compare digests, so neither the length nor the matching prefix of the secret shows in the timing.
        Array(SHA256.hash(data: a)).withUnsafeBytes { x in
            Array(SHA256.hash(data: b)).withUnsafeBytes { y in
                var difference: UInt8 = 0
                for index in 0..<32 { difference |= x[index] ^ y[index] }
                return difference == 0
            }
        }
    }

    /// The branch a push payload names: `ref` (`refs/heads/B`, GitHub, GitLab and generic) or `branch` (generic).
    static func pushPayload(_ body: [UInt8], delivery: String?) -> WebhookVerdict {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            return .malformed("the body is not a JSON object")
        }
        if let ref = object["ref"] as? String {
            guard ref.hasPrefix("refs/heads/") else { return .ignored("\(ref) is not a branch") }
            return .push(branch: String(ref.dropFirst("refs/heads/".count)), delivery: delivery)
        }
        if let branch = object["branch"] as? String { return .push(branch: branch, delivery: delivery) }
        return .push(branch: nil, delivery: delivery)
    }

    static func unhex(_ text: Substring) -> [UInt8]? {
        guard text.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

/// The delivery ids seen lately, so a replayed delivery starts nothing. Kept as SHA-256 digests: a sender
/// chooses the id's length, the log's memory stays 32 bytes an entry.
struct DeliveryLog {
    private var seen: Set<[UInt8]> = []
    private var order: [[UInt8]] = []
    let capacity: Int

    init(capacity: Int = 4096) {
        self.capacity = capacity
    }

    /// Records `id`; false when it was seen before.
    mutating func record(_ id: String) -> Bool {
        let digest = Array(SHA256.hash(data: Array(id.utf8)))
        guard seen.insert(digest).inserted else { return false }
        order.append(digest)
        if order.count > capacity {
            seen.remove(order.removeFirst())
        }
        return true
    }
}

/// What the webhook fuzz target (`scripts/fuzz webhook`) and its corpus replay run for one input: the first line
/// is a header value (a signature, a token, an event name or a delivery id, as the sender chooses), the rest the
/// body — verified for every provider, with the right secret and a wrong one, and parsed as a push. Anything may
/// come back; nothing may trap or hang, and no unsigned input may pass.
public enum WebhookFuzz {
    public static func one(_ bytes: [UInt8]) {
        let newline = bytes.firstIndex(of: 10) ?? bytes.endIndex
        let value = String(decoding: bytes[..<newline], as: UTF8.self)
        let body = Array(bytes[min(newline + 1, bytes.endIndex)...])
        let secret = Array("fuzz-secret".utf8)
        for provider in WebhookProvider.allCases {
            for name in ["x-hub-signature-256", "x-gitlab-token", "x-tide-signature", "x-github-event"] {
                let verdict = WebhookVerifier.verify(
                    provider: provider, headers: [name: value, "x-github-delivery": value], body: body,
                    secret: secret)
                if case .push = verdict, provider != .gitlab {
                    // Only the real signature of the body passes.
                    precondition(WebhookVerifier.signature(body: body, secret: secret) == value)
                }
            }
        }
        _ = WebhookVerifier.pushPayload(body, delivery: value)
        var log = DeliveryLog(capacity: 4)
        _ = log.record(value)
        precondition(!log.record(value))
    }
}
