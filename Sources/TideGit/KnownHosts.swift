import Crypto
import Foundation

/// An OpenSSH known_hosts file: the only way Tide trusts an SSH server. A host that is not listed, or listed with
/// another key, is refused — there is no "accept on first use".
public struct KnownHosts: Sendable {
    struct Entry: Sendable {
        enum Pattern: Sendable {
            case plain([String])
            /// `|1|salt|hash`: HMAC-SHA1 of the host name under the salt.
            case hashed(salt: [UInt8], hash: [UInt8])
        }
        var pattern: Pattern
        var keyType: String
        var key: [UInt8]
        var revoked: Bool
    }

    let entries: [Entry]
    public let path: String

    public init(path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RemoteURLError(description: "cannot read known_hosts file \(path): \(error.localizedDescription)")
        }
        self.path = path
        self.entries = text.split(whereSeparator: \.isNewline).compactMap(Self.entry)
    }

    private static func entry(_ line: Substring) -> Entry? {
        var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = fields.first, !first.hasPrefix("#") else { return nil }
        var revoked = false
        if first.hasPrefix("@") {
            guard first == "@revoked" else { return nil }  // @cert-authority: certificates are not supported
            revoked = true
            fields.removeFirst()
        }
        guard fields.count >= 3, let key = Data(base64Encoded: fields[2]) else { return nil }
        let hosts = fields[0]
        let pattern: Entry.Pattern
        if hosts.hasPrefix("|1|") {
            let parts = hosts.split(separator: "|")
            guard parts.count == 3, let salt = Data(base64Encoded: String(parts[1])),
                let hash = Data(base64Encoded: String(parts[2]))
            else { return nil }
            pattern = .hashed(salt: Array(salt), hash: Array(hash))
        } else {
            pattern = .plain(hosts.split(separator: ",").map(String.init))
        }
        return Entry(pattern: pattern, keyType: fields[1], key: Array(key), revoked: revoked)
    }

    /// The name known_hosts lists a server under: `host`, or `[host]:port` off port 22.
    static func name(host: String, port: Int?) -> String {
        guard let port, port != 22 else { return host }
        return "[\(host)]:\(port)"
    }

    /// The verdict on the key a server presented, given as its SHA-256 (what libgit2 hands over).
    public enum Verdict: Sendable, Equatable {
        case trusted
        case unknownHost
        case mismatch
        case revoked
    }

    /// A key a `@revoked` line names for the host is refused wherever that line is in the file — before or after
    /// a line that trusts it — as OpenSSH refuses it.
    public func verdict(host: String, port: Int?, keySHA256: [UInt8]) -> Verdict {
        let name = Self.name(host: host, port: port)
        let matching = entries.filter { Self.matches($0.pattern, name) }.map {
            (revoked: $0.revoked, key: Array(SHA256.hash(data: $0.key)) == keySHA256)
        }
        if matching.contains(where: { $0.revoked && $0.key }) { return .revoked }
        let trusting = matching.filter { !$0.revoked }
        if trusting.contains(where: \.key) { return .trusted }
        return trusting.isEmpty ? .unknownHost : .mismatch
    }

    /// OpenSSH's host patterns: `*` and `?` are wildcards, everything else (the brackets of `[host]:port` too)
    /// is literal; host names compare without case.
    static func glob(_ pattern: String, _ name: String) -> Bool {
        let pattern = Array(pattern.lowercased())
        let name = Array(name.lowercased())
        var p = 0
        var n = 0
        var star: Int?
        var resume = 0
        while n < name.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == name[n]) {
                p += 1
                n += 1
            } else if p < pattern.count && pattern[p] == "*" {
                star = p
                resume = n
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                n = resume
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }

    private static func matches(_ pattern: Entry.Pattern, _ name: String) -> Bool {
        switch pattern {
        case .plain(let patterns):
            var matched = false
            for pattern in patterns {
                if pattern.hasPrefix("!") {
                    if glob(String(pattern.dropFirst()), name) { return false }
                } else if glob(pattern, name) {
                    matched = true
                }
            }
            return matched
        case .hashed(let salt, let hash):
            let code = HMAC<Insecure.SHA1>.authenticationCode(
                for: Array(name.utf8), using: SymmetricKey(data: salt))
            return Array(code) == hash
        }
    }
}
