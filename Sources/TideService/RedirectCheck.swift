import AsyncHTTPClient
import Foundation
import NIOCore
import Synchronization
import TideGit

/// Where an HTTP(S) remote sends Tide before credentials go to it. libgit2 follows a redirect of the first
/// request to any host, and then answers the new host's challenge with the credentials meant for the remote (and
/// it never tells a caller where it went); told not to follow redirects off-site, it still follows one to another
/// port or scheme of the same host. So, when Tide has credentials for an HTTP(S) remote, the `git-remote` child
/// first asks the remote itself — without following redirects, answering a challenge only on the remote's own
/// address — and refuses a redirect to another scheme, host or port; libgit2 is then told to follow none off-site.
///
/// What must never happen: the remote's credentials sent to an address that is not the remote's (scheme, host and
/// port); a redirect within the remote's address refused (servers move repositories).
enum RedirectCheck {
    /// Why the operation is refused (nil: it may go on, or the check could not tell — the server did not answer
    /// it, and libgit2's own refusal of off-site redirects stands).
    static func refusal(
        for remote: RemoteURL, service: String, credentials: RemoteCredentials, timeout: Double = 10
    ) -> String? {
        guard remote.scheme == .http || remote.scheme == .https, let password = credentials.password,
            let start = URL(string: remote.url), let home = Origin(start)
        else { return nil }
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.proxy = proxy(for: remote.scheme, host: remote.host)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        defer { try? client.syncShutdown() }
        let base = remote.url.hasSuffix("/") ? String(remote.url.dropLast()) : remote.url
        var address = base + "/info/refs?service=" + service
        var answered = false
        for _ in 0..<5 {
            var request = HTTPClientRequest(url: address)
            request.headers.add(name: "User-Agent", value: "git/2.0 (tide)")
            if answered {
                let user = credentials.username ?? "x-access-token"
                let basic = Data("\(user):\(password)".utf8).base64EncodedString()
                request.headers.add(name: "Authorization", value: "Basic \(basic)")
            }
            guard let response = head(of: request, client: client, timeout: timeout) else { return nil }
            switch response.status {
            case 300..<400:
                guard let location = response.location,
                    let next = URL(string: location, relativeTo: URL(string: address))?.absoluteURL
                else { return nil }
                guard Origin(next) == home else {
                    return
                        "\(remote.redacted) redirects to \(URLRedaction.redacted(Origin(next)?.description ?? "?")): "
                        + "Tide does not send the remote's credentials to another scheme, host or port — give that "
                        + "address as --repo if it is the repository's new home"
                }
                address = next.absoluteString
            case 401 where !answered:
                answered = true
            default:
                return nil
            }
        }
        return nil
    }

    /// The status and `Location` of `request`'s answer. Its body is never read: a server cannot fill the child's
    /// memory with it.
    private static func head(
        of request: HTTPClientRequest, client: HTTPClient, timeout: Double
    ) -> (status: Int, location: String?)? {
        let slot = AnswerSlot()
        let done = DispatchSemaphore(value: 0)
        Task {
            defer { done.signal() }
            guard let response = try? await client.execute(request, deadline: .now() + .seconds(Int64(timeout)))
            else { return }
            slot.answer.withLock { $0 = (Int(response.status.code), response.headers.first(name: "Location")) }
        }
        done.wait()
        return slot.answer.withLock { $0 }
    }

    private final class AnswerSlot: Sendable {
        let answer = Mutex<(status: Int, location: String?)?>(nil)
    }

    /// A URL's scheme, host and port (the default port when none is written).
    struct Origin: Equatable, CustomStringConvertible {
        let scheme: String
        let host: String
        let port: Int

        init?(_ url: URL) {
            guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else { return nil }
            self.scheme = scheme
            self.host = host
            self.port = url.port ?? (scheme == "https" ? 443 : 80)
        }

        var description: String { "\(scheme)://\(host):\(port)" }
    }

    /// The proxy libgit2 would use, from the environment as git reads it (none for a host `no_proxy` names).
    private static func proxy(for scheme: RemoteURL.Scheme, host: String) -> HTTPClient.Configuration.Proxy? {
        let environment = ProcessInfo.processInfo.environment
        let excluded = (environment["no_proxy"] ?? environment["NO_PROXY"] ?? "").split(separator: ",").map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        let name = host.lowercased()
        if excluded.contains(where: { entry in
            entry == "*" || name == entry
                || (!entry.isEmpty && name.hasSuffix(entry.hasPrefix(".") ? entry : "." + entry))
        }) {
            return nil
        }
        let names = scheme == .https ? ["https_proxy", "HTTPS_PROXY"] : ["http_proxy", "HTTP_PROXY"]
        guard let text = names.lazy.compactMap({ environment[$0] }).first(where: { !$0.isEmpty }),
            let url = URL(string: text.contains("://") ? text : "http://" + text), let host = url.host
        else { return nil }
        return .server(host: host, port: url.port ?? 80)
    }
}
