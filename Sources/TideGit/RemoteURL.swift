import Foundation

/// Where a config repo lives: a local path, or a URL Tide fetches from into a mirror of its own.
public enum RepositoryLocation: Sendable, Hashable, CustomStringConvertible {
    case local(String)
    case remote(RemoteURL)

    /// Reads `--repo`: `file://`, `http(s)://`, `ssh://` and scp-style `user@host:path` are remote; anything else
    /// is a path.
    public init(_ text: String) throws(RemoteURLError) {
        if let remote = try RemoteURL(parsing: text) {
            self = .remote(remote)
        } else {
            self = .local(text)
        }
    }

    public var description: String {
        switch self {
        case .local(let path): path
        case .remote(let url): url.redacted
        }
    }
}

public struct RemoteURLError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A remote repository's address. Credentials never live in it: a URL with a password (`https://u:p@host/…`) is
/// refused, so it can be printed, logged and stored as it is.
public struct RemoteURL: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Codable {
        case file, http, https, ssh
    }

    public let scheme: Scheme
    /// The address as libgit2 is given it: the text as written.
    public let url: String
    /// The host, for known_hosts and messages (empty for `file://`).
    public let host: String
    public let port: Int?
    /// The user name in the URL (`git` in `git@host:org/repo.git`), if any.
    public let user: String?

    /// The address as the user wrote it, safe to print (credentials are refused when it is read; the redaction is
    /// kept as a second line of defence).
    public var redacted: String { URLRedaction.redacted(url) }
    public var description: String { redacted }

    /// nil when `text` is not a URL (a local path).
    public init?(parsing text: String) throws(RemoteURLError) {
        if let scheme = ["file", "http", "https", "ssh"].first(where: { text.lowercased().hasPrefix($0 + "://") }) {
            let shown = URLRedaction.redacted(text)
            guard let components = URLComponents(string: text), let parsed = Scheme(rawValue: scheme) else {
                throw RemoteURLError(description: "--repo: '\(shown)' is not a valid URL")
            }
            let encodedUser = components.percentEncodedUser ?? ""
            if components.password != nil || (components.user != nil && parsed != .ssh)
                || encodedUser.range(of: "%3a", options: .caseInsensitive) != nil || encodedUser.contains(":")
            {
                throw Self.credentials(shown)
            }
            // Tokens ride in queries (`?private_token=`, `?access_token=`) and anything in a fragment; git needs
            // neither, and what is not taken cannot be printed or stored.
            if components.query != nil || components.fragment != nil {
                throw RemoteURLError(
                    description: "--repo: '\(shown)': a repository URL takes no query (?…) or fragment (#…); "
                        + "credentials go in --git-password-file (or TIDE_GIT_PASSWORD) or --ssh-key")
            }
            if parsed != .file && (components.host ?? "").isEmpty {
                throw RemoteURLError(description: "--repo: '\(shown)' names no host")
            }
            self.scheme = parsed
            self.url = text
            self.host = components.host ?? ""
            self.port = components.port
            self.user = components.user
            return
        }
        if let separator = text.range(of: "://"), !text[..<separator.lowerBound].isEmpty,
            text[..<separator.lowerBound].allSatisfy({ $0.isLetter || $0 == "+" })
        {
            throw RemoteURLError(
                description: "--repo: '\(URLRedaction.redacted(text))': Tide fetches file://, http(s)://, ssh:// and "
                    + "scp-style user@host:path addresses")
        }
        // scp-style: [user@]host:path, where host has no slash and the colon comes before any slash.
        guard let colon = text.firstIndex(of: ":"), !text.hasPrefix("/"), !text.hasPrefix(".") else { return nil }
        let hostPart = text[..<colon]
        let path = text[text.index(after: colon)...]
        guard !hostPart.isEmpty, !hostPart.contains("/"), !path.isEmpty, !path.hasPrefix("//") else { return nil }
        // A password: `user:SECRET@host:path` (what looks like the path holds '@' and then the real colon), or a
        // percent-encoded colon in the user (`u%3ASECRET@host:path`).
        let encodedColon = hostPart.range(of: "%3a", options: .caseInsensitive) != nil
        if encodedColon
            || (!hostPart.contains("@") && path.firstIndex(of: "@").map { path[$0...].contains(":") } == true)
        {
            throw Self.credentials(URLRedaction.redacted(text))
        }
        // Empty pieces kept: `@:path` has no user and no host (found by the remote-url fuzz target: it trapped).
        let pieces = hostPart.split(separator: "@", omittingEmptySubsequences: false)
        let user = pieces.count > 1 && !pieces[0].isEmpty ? String(pieces[0]) : nil
        let host = String(pieces[pieces.count - 1])
        guard !host.isEmpty, host.count > 1 || !path.hasPrefix("\\") else { return nil }  // C:\ on Windows
        self.scheme = .ssh
        // As written: libgit2 reads scp-style itself, where a relative path is relative to the user's home.
        self.url = text
        self.host = host
        self.port = nil
        self.user = user
    }

    private static func credentials(_ shown: String) -> RemoteURLError {
        RemoteURLError(
            description: "--repo: credentials do not belong in the URL ('\(shown)'); give them with "
                + "--git-password-file (or TIDE_GIT_PASSWORD) or --ssh-key")
    }
}
