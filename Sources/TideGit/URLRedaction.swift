import Foundation

/// The one way Tide shows a URL someone wrote — a remote repository, a database, an HTTP executor, a metrics
/// server — in a message, a log line, the state or an event: whatever may be a credential becomes `***`.
///
/// - the user information between `scheme://` and the last `@` (a password may hold `/`, `?`, `#` and `@`
///   itself, but an '@' in the query or fragment is theirs): what follows the user's first `:` (or its
///   percent-encoded `%3A`); a lone "user" too, except where users are names (`ssh`, database URLs);
/// - written without `//` (scp-style `git:SECRET@host:path`, `postgres:u:secret@h/db`): everything from the first
///   `:` (or `%3A`) to the last `@`;
/// - query parameters that name a secret (`password=`, `token=`, `private_token=`, `access_token=`, `key=`, …),
///   whatever their case;
/// - a fragment, which nothing reads and which may carry anything.
public enum URLRedaction {
    public static func redacted(_ text: String) -> String {
        var text = text
        if let scheme = text.range(of: "://") {
            // The user information ends at the last '@' before the query or fragment (an '@' in those is theirs).
            let end = text[scheme.upperBound...].firstIndex(where: { $0 == "?" || $0 == "#" }) ?? text.endIndex
            if let at = text[scheme.upperBound..<end].lastIndex(of: "@") {
                let name = text[..<scheme.lowerBound].lowercased()
                let userinfo = scheme.upperBound..<at
                if let colon = firstColon(in: text[userinfo]) {
                    text.replaceSubrange(colon..<at, with: ":***")
                } else if !Self.schemesWithUsers.contains(name) {
                    text.replaceSubrange(userinfo, with: "***")
                }
            }
        } else if let at = text.lastIndex(of: "@"), let colon = firstColon(in: text[..<at]) {
            text.replaceSubrange(colon..<at, with: ":***")
        }
        if let hash = text.firstIndex(of: "#") { text = String(text[..<hash]) + "#***" }
        return text.replacing(secretParameter) { "\($0.1)=***" }
    }

    /// Schemes whose lone user is a name (`ssh://git@host`, `postgres://tide@db`); anywhere else (`https://TOKEN@`,
    /// `git://TOKEN@`) a lone "user" is a token.
    static let schemesWithUsers: Set<String> = ["ssh", "postgres", "postgresql", "sqlite", "mysql"]

    /// Where a user's password starts: its first `:`, literal or percent-encoded.
    private static func firstColon(in text: Substring) -> String.Index? {
        let literal = text.firstIndex(of: ":")
        let encoded = text.range(of: "%3a", options: .caseInsensitive)?.lowerBound
        switch (literal, encoded) {
        case (let a?, let b?): return min(a, b)
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }

    /// Query parameters that name a secret, whatever their case (`private_token`, `access_token` end in `token`).
    nonisolated(unsafe) public static let secretParameter =
        #/(?i)((?:password|passwd|pass|pwd|secret|token|apikey|api_key|key))\s*=[^&#]*/#
}
