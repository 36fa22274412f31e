import Testing
import TideTestSupport

@testable import TideGit

/// Hardening round two, 5: one redaction for every URL form, tested with the table every URL check uses.
@Suite("URLRedaction: no form of URL shows its secret")
struct URLRedactionTests {
    @Test("every URL of the shared table is shown without its secret", arguments: SecretURLs.all)
    func noSecret(_ url: String) {
        let shown = URLRedaction.redacted(url)
        #expect(!shown.contains(SecretURLs.secret), "\(url) → \(shown)")
        #expect(shown.contains("***"), "\(url) → \(shown)")
    }

    @Test("what is not a credential stays as written")
    func keeps() {
        #expect(
            URLRedaction.redacted("ssh://git@example.com:2222/config.git") == "ssh://git@example.com:2222/config.git")
        #expect(URLRedaction.redacted("git@github.com:org/config.git") == "git@github.com:org/config.git")
        #expect(URLRedaction.redacted("https://example.com/c.git?ref=main") == "https://example.com/c.git?ref=main")
        #expect(URLRedaction.redacted("postgres://tide:hunter2@db:5432/orders") == "postgres://tide:***@db:5432/orders")
        #expect(URLRedaction.redacted("git:hunter2@example.com:org/c.git") == "git:***@example.com:org/c.git")
        #expect(URLRedaction.redacted("https://u:a@b c@example.com/c.git") == "https://u:***@example.com/c.git")
        #expect(URLRedaction.redacted("https://hunter2@example.com/c.git") == "https://***@example.com/c.git")
        // An '@' in the query or fragment is not the user information's (hardening review).
        #expect(
            URLRedaction.redacted("https://example.com/c.git?private_token=abc@hunter2")
                == "https://example.com/c.git?private_token=***")
        #expect(
            URLRedaction.redacted("https://d.internal/hook?password=p@hunter2")
                == "https://d.internal/hook?password=***")
        #expect(URLRedaction.redacted("https://example.com/c.git#x@hunter2") == "https://example.com/c.git#***")
        #expect(URLRedaction.redacted("git://hunter2@example.com/r.git") == "git://***@example.com/r.git")
    }

    @Test(
        "a repository address with a credential in any form is refused, and the refusal does not show it",
        arguments: SecretURLs.remotes)
    func remotesRefused(_ url: String) {
        do {
            let location = try RepositoryLocation(url)
            Issue.record("accepted: \(location)")
        } catch {
            #expect(!error.description.contains(SecretURLs.secret), "\(error.description)")
        }
    }
}
