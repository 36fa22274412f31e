internal import CLibgit2
import Foundation

/// What Tide authenticates to a remote with. Only ever held in memory: read from files or the environment by the
/// caller, handed to a fetch or push, never logged, printed or stored in the state.
public struct RemoteCredentials: Sendable, Codable, Equatable {
    /// User name for HTTP(S) (with a token, any name the server accepts: `x-access-token` for GitHub, `oauth2`
    /// for GitLab) or SSH (default: the URL's, else `git`).
    public var username: String?
    /// An HTTP(S) password or token.
    public var password: String?
    /// An SSH private key file, and its passphrase.
    public var sshKey: String?
    public var sshPassphrase: String?
    /// The known_hosts file SSH servers are checked against.
    public var knownHosts: String?

    public init(
        username: String? = nil, password: String? = nil, sshKey: String? = nil, sshPassphrase: String? = nil,
        knownHosts: String? = nil
    ) {
        self.username = username
        self.password = password
        self.sshKey = sshKey
        self.sshPassphrase = sshPassphrase
        self.knownHosts = knownHosts
    }
}

/// A push that git refused because the branch is not where Tide based its commit (someone pushed meanwhile).
public struct PushRejected: Error, CustomStringConvertible, Sendable {
    /// The branch's head on the remote when the push was refused (nil if it could not be read).
    public let remoteHead: ObjectID?
    public let reason: String
    public var description: String { "push rejected: \(reason)" }
}

/// The state a libgit2 callback needs, passed to it as its payload.
private final class RemoteCallbackContext {
    let remote: RemoteURL
    let credentials: RemoteCredentials
    let knownHosts: KnownHosts?
    var credentialAttempts = 0
    /// Why a callback refused, reported instead of libgit2's generic message.
    var refusal: String?
    var pushStatus: String?

    init(remote: RemoteURL, credentials: RemoteCredentials) throws {
        self.remote = remote
        self.credentials = credentials
        self.knownHosts = try credentials.knownHosts.map { try KnownHosts(path: $0) }
    }

    func acquire(
        _ out: UnsafeMutablePointer<UnsafeMutablePointer<git_credential>?>?, usernameFromURL: String?,
        allowed: UInt32
    ) -> Int32 {
        credentialAttempts += 1
        guard credentialAttempts <= 2 else {  // libgit2 asks again after a refusal: that is a wrong credential
            refusal = "authentication failed for \(remote.redacted)"
            return GIT_EAUTH.rawValue
        }
        let user = credentials.username ?? usernameFromURL ?? remote.user ?? "git"
        if allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0, let key = credentials.sshKey {
            return git_credential_ssh_key_new(out, user, nil, key, credentials.sshPassphrase)
        }
        if allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0 {
            return git_credential_username_new(out, user)
        }
        if allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0, let password = credentials.password {
            return git_credential_userpass_plaintext_new(out, credentials.username ?? "x-access-token", password)
        }
        refusal =
            allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0
            ? "\(remote.redacted) asks for an SSH key: give one with --ssh-key"
            : "\(remote.redacted) asks for credentials: give them with --git-password-file or TIDE_GIT_PASSWORD"
        return GIT_EAUTH.rawValue
    }

    func checkCertificate(_ cert: UnsafeMutablePointer<git_cert>?) -> Int32 {
        guard let cert, cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 else {
            return GIT_PASSTHROUGH.rawValue  // TLS: libgit2 checks it against the system's CAs
        }
        guard let knownHosts else {
            refusal = "refusing SSH host \(remote.host): no known_hosts file given (--known-hosts)"
            return GIT_ECERTIFICATE.rawValue
        }
        let hostkey = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        guard hostkey.type.rawValue & GIT_CERT_SSH_SHA256.rawValue != 0 else {
            refusal = "refusing SSH host \(remote.host): the server's key has no SHA-256 fingerprint"
            return GIT_ECERTIFICATE.rawValue
        }
        let sha256 = withUnsafeBytes(of: hostkey.hash_sha256) { Array($0) }
        let fingerprint = "SHA256:" + Data(sha256).base64EncodedString().replacingOccurrences(of: "=", with: "")
        switch knownHosts.verdict(host: remote.host, port: remote.port, keySHA256: sha256) {
        case .trusted:
            return 0
        case .unknownHost:
            refusal =
                "refusing SSH host \(KnownHosts.name(host: remote.host, port: remote.port)): not in "
                + "\(knownHosts.path) (its key is \(fingerprint))"
        case .mismatch:
            refusal =
                "refusing SSH host \(KnownHosts.name(host: remote.host, port: remote.port)): its key \(fingerprint) "
                + "is not the one \(knownHosts.path) lists — the host key changed, or someone is in the middle"
        case .revoked:
            refusal = "refusing SSH host \(remote.host): its key \(fingerprint) is revoked in \(knownHosts.path)"
        }
        return GIT_ECERTIFICATE.rawValue
    }
}

private func callbackContext(_ payload: UnsafeMutableRawPointer?) -> RemoteCallbackContext {
    Unmanaged<RemoteCallbackContext>.fromOpaque(payload!).takeUnretainedValue()  // always set by `callbacks`
}

private func callbacks(_ context: RemoteCallbackContext) throws -> git_remote_callbacks {
    var callbacks = git_remote_callbacks()
    try check(git_remote_init_callbacks(&callbacks, UInt32(GIT_REMOTE_CALLBACKS_VERSION)), "set up remote callbacks")
    callbacks.payload = Unmanaged.passUnretained(context).toOpaque()
    callbacks.credentials = { out, _, usernameFromURL, allowed, payload in
        callbackContext(payload).acquire(
            out, usernameFromURL: usernameFromURL.map { String(cString: $0) }, allowed: allowed)
    }
    callbacks.certificate_check = { cert, _, _, payload in
        callbackContext(payload).checkCertificate(cert)
    }
    callbacks.push_update_reference = { _, status, payload in
        if let status { callbackContext(payload).pushStatus = String(cString: status) }
        return 0
    }
    return callbacks
}

extension Repository {
    /// Opens the bare mirror at `path`, creating it when it does not exist yet.
    /// Tide's own mirror is opened whoever owns it: the service's user fetches into it and an operator (root, or
    /// someone in the service's group) reads it. libgit2 refuses a repository another user owns unless
    /// `safe.directory` lists it — a guard against a repository planted by someone else, which a mirror Tide made
    /// at a path of its own choosing is not. Called by processes whose only repository is a mirror (a remote
    /// `--repo`, and the `git-remote` child); the setting is process-wide.
    public static func trustMirrorOwners() {
        _ = libgit2Initialized
        _ = tide_git_set_owner_validation(0)
    }

    public static func openMirror(at path: String) throws -> Repository {
        _ = libgit2Initialized
        if FileManager.default.fileExists(atPath: (path as NSString).appendingPathComponent("HEAD")) {
            return try open(at: path)
        }
        var repo: OpaquePointer?
        try check(git_repository_init(&repo, path, 1), "create mirror \(path)")
        guard let repo else { throw GitError(code: -1, operation: "create mirror \(path)", message: "no handle") }
        return Repository(pointer: repo)
    }

    /// Fetches `branch` (nil: the remote's default branch) from `remote` into this repository's branch of the same
    /// name, which then is exactly the remote's (a force-pushed remote is followed), and points HEAD at it.
    /// Returns the branch and its head.
    public func fetch(
        from remote: RemoteURL, branch: String?, credentials: RemoteCredentials
    ) throws -> (branch: String, head: ObjectID) {
        let context = try RemoteCallbackContext(remote: remote, credentials: credentials)
        return try withRemote(remote, context: context) { handle, repo, callbacks in
            try context.connect(handle, GIT_DIRECTION_FETCH, callbacks: callbacks, credentials: credentials)
            defer { git_remote_disconnect(handle) }
            let heads = try Self.advertised(handle)
            let name = try branch ?? Self.defaultBranch(heads, remote: remote)
            guard let advertised = heads["refs/heads/\(name)"] else {
                throw GitError(code: -3, operation: "fetch \(remote)", message: "the remote has no branch '\(name)'")
            }
            var options = git_fetch_options()
            git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
            options.callbacks = callbacks
            options.proxy_opts = Self.proxyOptions()
            options.follow_redirects = Self.redirects(credentials)
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            options.update_fetchhead = 0
            let refspec = "+refs/heads/\(name):refs/heads/\(name)"
            try Self.withStrarray([refspec]) { specs in
                try context.guarding(
                    git_remote_fetch(handle, specs, &options, "tide fetch"), "fetch \(name) from \(remote)")
            }
            try check(git_repository_set_head(repo, "refs/heads/\(name)"), "point the mirror's HEAD at \(name)")
            return (name, advertised)
        }
    }

    /// Pushes `commit` to `branch` on `remote`, only if the remote's branch is still at `expected` (the commit Tide
    /// built on): never a force-push. Throws `PushRejected` when someone else moved the branch.
    public func push(
        _ commit: ObjectID, to remote: RemoteURL, branch: String, expected: ObjectID, credentials: RemoteCredentials
    ) throws {
        let context = try RemoteCallbackContext(remote: remote, credentials: credentials)
        try withRemote(remote, context: context) { handle, repo, callbacks in
            try context.connect(handle, GIT_DIRECTION_PUSH, callbacks: callbacks, credentials: credentials)
            let current = try Self.advertised(handle)["refs/heads/\(branch)"]
            guard current == expected else {
                git_remote_disconnect(handle)
                throw PushRejected(
                    remoteHead: current,
                    reason: "\(branch) on \(remote) is at \(current?.short ?? "nothing"), not \(expected.short)")
            }
            var options = git_push_options()
            git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION))
            options.callbacks = callbacks
            options.proxy_opts = Self.proxyOptions()
            options.follow_redirects = Self.redirects(credentials)
            // Exactly `commit`, through a private ref (whatever the local branch holds by now), and no leading
            // '+': the server refuses anything but a fast-forward from what it has.
            var publishRef: OpaquePointer?
            var oid = commit.oid
            try check(
                git_reference_create(&publishRef, repo, "refs/tide/publish", &oid, 1, "tide publish"),
                "point refs/tide/publish at \(commit.short)")
            git_reference_free(publishRef)
            let refspec = "refs/tide/publish:refs/heads/\(branch)"
            do {
                try Self.withStrarray([refspec]) { specs in
                    try context.guarding(git_remote_upload(handle, specs, &options), "push to \(remote)")
                }
            } catch let error as GitError {
                git_remote_disconnect(handle)
                if error.message.contains("non-fast-forward") || error.message.contains("rejected") {
                    throw PushRejected(remoteHead: nil, reason: error.message)
                }
                throw error
            }
            git_remote_disconnect(handle)
            if let status = context.pushStatus {
                throw PushRejected(remoteHead: nil, reason: "\(remote) refused \(branch): \(status)")
            }
        }
    }

    private func withRemote<T>(
        _ remote: RemoteURL, context: RemoteCallbackContext,
        _ body: (OpaquePointer, OpaquePointer, git_remote_callbacks) throws -> T
    ) throws -> T {
        try withHandle { repo in
            var handle: OpaquePointer?
            try check(git_remote_create_anonymous(&handle, repo, remote.url), "open remote \(remote)")
            defer { git_remote_free(handle) }
            return try body(handle!, repo, try callbacks(context))  // set when create succeeded
        }
    }

    /// Which redirects libgit2 follows: with a password or token, none to another host (it would answer the other
    /// host's challenge with them; `RedirectCheck` in the child refuses the rest — another port or scheme);
    /// without, git's default (the first request's).
    static func redirects(_ credentials: RemoteCredentials) -> git_remote_redirect_t {
        credentials.password == nil ? GIT_REMOTE_REDIRECT_INITIAL : GIT_REMOTE_REDIRECT_NONE
    }

    /// The proxy from git's configuration or `HTTPS_PROXY`/`HTTP_PROXY`, as git itself finds it.
    static func proxyOptions() -> git_proxy_options {
        var proxy = git_proxy_options()
        git_proxy_options_init(&proxy, UInt32(GIT_PROXY_OPTIONS_VERSION))
        proxy.type = GIT_PROXY_AUTO
        return proxy
    }

    private static func advertised(_ handle: OpaquePointer) throws -> [String: ObjectID] {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        try check(git_remote_ls(&heads, &count, handle), "list the remote's branches")
        var result: [String: ObjectID] = [:]
        for index in 0..<count {
            guard let head = heads?[index]?.pointee, let name = head.name else { continue }
            let ref = String(cString: name)
            if ref == "HEAD", let target = head.symref_target {
                result["HEAD -> " + String(cString: target)] = ObjectID(head.oid)
            }
            result[ref] = ObjectID(head.oid)
        }
        return result
    }

    private static func defaultBranch(_ heads: [String: ObjectID], remote: RemoteURL) throws -> String {
        if let symref = heads.keys.first(where: { $0.hasPrefix("HEAD -> refs/heads/") }) {
            return String(symref.dropFirst("HEAD -> refs/heads/".count))
        }
        for candidate in ["main", "master"] where heads["refs/heads/\(candidate)"] != nil { return candidate }
        throw GitError(
            code: -3, operation: "fetch \(remote)", message: "cannot tell the remote's default branch: give --branch")
    }

    private static func withStrarray<T>(_ strings: [String], _ body: (UnsafePointer<git_strarray>) throws -> T) rethrows
        -> T
    {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return try pointers.withUnsafeMutableBufferPointer { buffer in
            var array = git_strarray(strings: buffer.baseAddress, count: buffer.count)
            return try body(&array)
        }
    }
}

extension RemoteCallbackContext {
    /// Connects `handle` for `direction` with the callbacks, git's proxy and the redirects `credentials` allow.
    func connect(
        _ handle: OpaquePointer, _ direction: git_direction, callbacks: git_remote_callbacks,
        credentials: RemoteCredentials
    ) throws {
        var options = git_remote_connect_options()
        try check(
            git_remote_connect_options_init(&options, UInt32(GIT_REMOTE_CONNECT_OPTIONS_VERSION)),
            "set up the connection")
        options.callbacks = callbacks
        options.proxy_opts = Repository.proxyOptions()
        options.follow_redirects = Repository.redirects(credentials)
        try guarding(git_remote_connect_ext(handle, direction, &options), "connect to \(remote)")
    }

    /// `check`, with the reason a callback refused (an unknown host key, a wrong password) in place of libgit2's
    /// generic "user rejected certificate".
    func guarding(_ rc: Int32, _ operation: @autoclosure () -> String) throws {
        guard rc < 0 else { return }
        if let refusal { throw GitError(code: rc, operation: operation(), message: refusal) }
        try check(rc, operation())
    }
}
