import Foundation
import Testing

@testable import TideGit
@testable import TideService

@Suite("Remote addresses and known_hosts")
struct RemoteAddressTests {
    @Test("URLs and scp-style addresses are remote; paths are local; credentials in a URL are refused, redacted")
    func locations() throws {
        #expect(try RepositoryLocation("/srv/config") == .local("/srv/config"))
        #expect(try RepositoryLocation("./config") == .local("./config"))
        #expect(try RepositoryLocation("config") == .local("config"))
        guard case .remote(let scp) = try RepositoryLocation("git@github.com:org/config.git") else {
            Issue.record("scp-style address taken for a path")
            return
        }
        #expect(scp.url == "git@github.com:org/config.git" && scp.host == "github.com" && scp.user == "git")
        #expect(scp.scheme == .ssh && scp.port == nil)
        guard case .remote(let ssh) = try RepositoryLocation("ssh://git@127.0.0.1:2222/srv/config.git") else {
            Issue.record("ssh URL taken for a path")
            return
        }
        #expect(ssh.port == 2222 && ssh.host == "127.0.0.1")
        do {
            _ = try RepositoryLocation("https://alice:hunter2@example.com/config.git")
            Issue.record("a URL with a password was accepted")
        } catch {
            #expect(!error.description.contains("hunter2"))
            #expect(error.description.contains("alice:***@example.com"))
        }
        #expect(throws: RemoteURLError.self) { try RepositoryLocation("https://token@example.com/config.git") }
        #expect(throws: RemoteURLError.self) { try RepositoryLocation("https:///config.git") }
        // Found by the remote-url fuzz target: an '@' with nothing around it trapped.
        for text in ["@:LH#", "@:x", "@@:x", "u@:x"] {
            #expect(try RepositoryLocation(text) == .local(text), "\(text)")
        }
        guard case .remote(let userless) = try RepositoryLocation("@github.com:org/config.git") else {
            Issue.record("an empty user taken for a path")
            return
        }
        #expect(userless.user == nil && userless.host == "github.com")
    }

    @Test("known_hosts: plain, bracketed port, wildcard, hashed and revoked entries; a changed key is a mismatch")
    func knownHosts() throws {
        let key = Array(repeating: UInt8(7), count: 51)
        let other = Array(repeating: UInt8(9), count: 51)
        let encoded = Data(key).base64EncodedString()
        let otherEncoded = Data(other).base64EncodedString()
        // A hashed entry for [127.0.0.1]:2222, made as ssh-keygen -H makes them.
        let salt = Array(repeating: UInt8(1), count: 20)
        let hash = HMACSHA1.code(key: salt, message: Array("[127.0.0.1]:2222".utf8))
        let text = """
            # comment
            example.com,192.0.2.1 ssh-ed25519 \(encoded)
            *.corp.example ssh-ed25519 \(encoded)
            |1|\(Data(salt).base64EncodedString())|\(Data(hash).base64EncodedString()) ssh-ed25519 \(encoded)
            @revoked bad.example ssh-ed25519 \(otherEncoded)
            bad.example ssh-ed25519 \(encoded)
            """
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("known-\(UUID())").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let hosts = try KnownHosts(path: path)
        let sha = HMACSHA1.sha256(key)
        let otherSha = HMACSHA1.sha256(other)
        #expect(hosts.verdict(host: "example.com", port: nil, keySHA256: sha) == .trusted)
        #expect(hosts.verdict(host: "EXAMPLE.com", port: 22, keySHA256: sha) == .trusted)
        #expect(hosts.verdict(host: "example.com", port: 2222, keySHA256: sha) == .unknownHost)
        #expect(hosts.verdict(host: "git.corp.example", port: nil, keySHA256: sha) == .trusted)
        #expect(hosts.verdict(host: "127.0.0.1", port: 2222, keySHA256: sha) == .trusted)
        #expect(hosts.verdict(host: "127.0.0.1", port: 2223, keySHA256: sha) == .unknownHost)
        #expect(hosts.verdict(host: "example.com", port: nil, keySHA256: otherSha) == .mismatch)
        #expect(hosts.verdict(host: "bad.example", port: nil, keySHA256: otherSha) == .revoked)
        #expect(KnownHosts.glob("[127.0.0.1]:2222", "[127.0.0.1]:2222"))
        // Hardening round two, 6: a trusted line followed by a @revoked line for the same key is refused too.
        let trustedThenRevoked = """
            good.example ssh-ed25519 \(encoded)
            @revoked good.example ssh-ed25519 \(encoded)
            """
        let later = FileManager.default.temporaryDirectory.appendingPathComponent("known-\(UUID())").path
        try trustedThenRevoked.write(toFile: later, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: later) }
        #expect(try KnownHosts(path: later).verdict(host: "good.example", port: nil, keySHA256: sha) == .revoked)
        #expect(!KnownHosts.glob("[127.0.0.1]:2222", "1:2222"))
    }
}
