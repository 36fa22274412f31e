import Foundation
import Testing
import TideTestSupport

@testable import TideGit
@testable import TideService

@Suite("Webhook verification: signatures over the raw body, in constant time; nothing forged starts a pass")
struct WebhookVerifierTests {
    let secret = Array("It's a Secret to Everybody".utf8)

    @Test("GitHub's published example: secret, payload and signature from its documentation")
    func githubExample() {
        let signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        let body = Array("Hello, World!".utf8)
        #expect(WebhookVerifier.validHMAC(signature, body: body, secret: secret))
        #expect(WebhookVerifier.signature(body: body, secret: secret) == signature)
        // Valid signature, but not a push payload: malformed, not unauthorized.
        let verdict = WebhookVerifier.verify(
            provider: .github, headers: ["x-hub-signature-256": signature], body: body, secret: secret)
        #expect(verdict == .malformed("the body is not a JSON object"))
    }

    @Test("forged, truncated, upper-case-prefixed, empty and missing signatures are all refused")
    func forged() {
        let body = Array(#"{"ref":"refs/heads/main"}"#.utf8)
        let good = WebhookVerifier.signature(body: body, secret: secret)
        var flipped = Array(good)
        flipped[flipped.count - 1] = flipped.last == "0" ? "1" : "0"
        for header in [
            String(flipped), String(good.dropLast(2)), good.replacingOccurrences(of: "sha256=", with: "SHA256="),
            "sha256=", "", "sha1=" + good.dropFirst(7), good + "00",
        ] {
            let verdict = WebhookVerifier.verify(
                provider: .generic, headers: ["x-tide-signature": header], body: body, secret: secret)
            guard case .unauthorized = verdict else {
                Issue.record("\(header) was accepted: \(verdict)")
                continue
            }
        }
        #expect(
            WebhookVerifier.verify(provider: .github, headers: [:], body: body, secret: secret)
                == .unauthorized("no X-Hub-Signature-256 header"))
        // The right signature for another body.
        let other = Array(#"{"ref":"refs/heads/evil"}"#.utf8)
        guard
            case .unauthorized = WebhookVerifier.verify(
                provider: .github, headers: ["x-hub-signature-256": good], body: other, secret: secret)
        else {
            Issue.record("a signature for another body was accepted")
            return
        }
    }

    @Test("push payloads: branch from ref or branch; tags and other events start nothing; ping answers")
    func payloads() {
        func generic(_ json: String, _ extra: [String: String] = [:]) -> WebhookVerdict {
            let body = Array(json.utf8)
            let headers = ["x-tide-signature": WebhookVerifier.signature(body: body, secret: secret)].merging(extra) {
                $1
            }
            return WebhookVerifier.verify(provider: .generic, headers: headers, body: body, secret: secret)
        }
        #expect(generic(#"{"ref":"refs/heads/main"}"#) == .push(branch: "main", delivery: nil))
        #expect(
            generic(#"{"branch":"release"}"#, ["x-tide-delivery": "d1"]) == .push(branch: "release", delivery: "d1"))
        #expect(generic(#"{"ref":"refs/tags/v1"}"#) == .ignored("refs/tags/v1 is not a branch"))
        #expect(generic("[1,2]") == .malformed("the body is not a JSON object"))
        #expect(generic("{") == .malformed("the body is not a JSON object"))
        let ping = Array(#"{"zen":"Design for failure."}"#.utf8)
        #expect(
            WebhookVerifier.verify(
                provider: .github,
                headers: [
                    "x-hub-signature-256": WebhookVerifier.signature(body: ping, secret: secret),
                    "x-github-event": "ping",
                ], body: ping, secret: secret) == .ping)
    }

    @Test("GitLab's token compares whole: a prefix, a longer value or another token is refused")
    func gitlab() {
        let body = Array(#"{"ref":"refs/heads/main"}"#.utf8)
        let token = String(decoding: secret, as: UTF8.self)
        #expect(
            WebhookVerifier.verify(
                provider: .gitlab, headers: ["x-gitlab-token": token, "x-gitlab-event-uuid": "u1"], body: body,
                secret: secret) == .push(branch: "main", delivery: "u1"))
        for wrong in [String(token.dropLast()), token + "x", "", "other"] {
            guard
                case .unauthorized = WebhookVerifier.verify(
                    provider: .gitlab, headers: ["x-gitlab-token": wrong], body: body, secret: secret)
            else {
                Issue.record("token '\(wrong)' was accepted")
                continue
            }
        }
    }

    @Test("the delivery log refuses a replay and forgets the oldest beyond its capacity")
    func deliveries() {
        var log = DeliveryLog(capacity: 3)
        let first = log.record("a")
        let again = log.record("a")
        #expect(first && !again)
        let added = [log.record("b"), log.record("c"), log.record("d")]
        #expect(added == [true, true, true])
        let forgotten = log.record("a")  // it was the oldest
        let replayed = log.record("d")
        #expect(forgotten && !replayed)
    }

    @Test("secret files: one secret for all, or one line per provider; an unknown layout is refused")
    func secretFiles() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tide-secrets-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func file(_ text: String) throws -> String {
            let path = directory.appendingPathComponent(UUID().uuidString).path
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let one = try WebhookSecrets(file: file("s3cret\n"))
        #expect(one.secret(.github) == Array("s3cret".utf8) && one.secret(.generic) == Array("s3cret".utf8))
        let each = try WebhookSecrets(file: file("github: a\ngitlab: b\n"))
        #expect(each.secret(.github) == Array("a".utf8) && each.secret(.gitlab) == Array("b".utf8))
        #expect(each.secret(.generic) == nil)
        #expect(throws: WebhookError.self) { try WebhookSecrets(file: file("a\nb\n")) }
        #expect(throws: WebhookError.self) { try WebhookSecrets(file: file("\n\n")) }
        // Hardening round two, 3: an empty per-provider secret would let anyone through; refused at start-up.
        for text in ["github: a\ngitlab:\n", "generic:   \n", "github: a\ngithub: b\n"] {
            #expect(throws: WebhookError.self, "\(text)") { try WebhookSecrets(file: file(text)) }
        }
        #expect(WebhookSecrets(secrets: [.gitlab: []]).secret(.gitlab) == nil)
    }

    @Test("5,000 deliveries with 80 KB ids keep the replay log small: ids are kept as digests (hardening round two, 2)")
    func longDeliveryIDs() {
        var log = DeliveryLog()
        let before = residentMegabytes()
        var fresh = 0
        for index in 0..<5_000 where log.record(String(repeating: "d", count: 80_000) + "\(index)") { fresh += 1 }
        #expect(fresh == 5_000)
        let replayed = log.record(String(repeating: "d", count: 80_000) + "4999")
        #expect(!replayed, "a replay is still seen")
        // Kept whole, the ids would hold 400 MB.
        #expect(residentMegabytes() - before < 100, "\(before) → \(residentMegabytes()) MB")
    }
}
