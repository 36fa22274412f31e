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

    /// The address as the user wrote it, safe to print.
    public var redacted: String { url }
    public var description: String { url }

    /// nil when `text` is not a URL (a local path).
    public init?(parsing text: String) throws(RemoteURLError) {
        if let scheme = ["file", "http", "https", "ssh"].first(where: { text.lowercased().hasPrefix($0 + "://") }) {
            guard let components = URLComponents(string: text), let parsed = Scheme(rawValue: scheme) else {
                throw RemoteURLError(description: "--repo: '\(Self.withoutPassword(text))' is not a valid URL")
            }
            if components.password != nil || (components.user != nil && parsed != .ssh) {
                throw RemoteURLError(
                    description: "--repo: credentials do not belong in the URL "
                        + "('\(Self.withoutPassword(text))'); give them with --git-password-file (or TIDE_GIT_PASSWORD) or --ssh-key"
                )
            }
            if parsed != .file && (components.host ?? "").isEmpty {
                throw RemoteURLError(description: "--repo: '\(text)' names no host")
            }
            self.scheme = parsed
            self.url = text
            self.host = components.host ?? ""
            self.port = components.port
            self.user = components.user
            return
        }
        // scp-style: [user@]host:path, where host has no slash and the colon comes before any slash.
        guard let colon = text.firstIndex(of: ":"), !text.hasPrefix("/"), !text.hasPrefix(".") else { return nil }
        let hostPart = text[..<colon]
        let path = text[text.index(after: colon)...]
        guard !hostPart.isEmpty, !hostPart.contains("/"), !path.isEmpty, !path.hasPrefix("//") else { return nil }
        let user = hostPart.contains("@") ? String(hostPart.split(separator: "@")[0]) : nil
        let host = hostPart.contains("@") ? String(hostPart.split(separator: "@").last ?? "") : String(hostPart)
        guard !host.isEmpty, host.count > 1 || !path.hasPrefix("\\") else { return nil }  // C:\ on Windows
        self.scheme = .ssh
        // As written: libgit2 reads scp-style itself, where a relative path is relative to the user's home.
        self.url = text
        self.host = host
        self.port = nil
        self.user = user
    }

    /// `text` with the password of a `user:password@` part replaced by `***`.
    public static func withoutPassword(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else {
            return text
        }
        let userinfo = text[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }
}
