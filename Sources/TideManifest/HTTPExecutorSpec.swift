import Foundation

/// `type: http` — each action is POSTed as JSON (the plugin protocol's request) to `url`. What only this type has.
public struct HTTPExecutorSpec: Sendable, Hashable {
    /// A header's value: written in the manifest, or read when the action runs from a secret the operator holds.
    public enum HeaderValue: Sendable, Hashable {
        case text(String)
        case secret(PasswordSource)
    }

    /// http:// or https://, without credentials (they go in `headers`).
    public var url: String
    public var headers: [String: HeaderValue] = [:]
    /// The key of the `X-Tide-Signature: sha256=…` HMAC of each body (none: requests are not signed).
    public var secret: PasswordSource?
    /// PEM file of the authorities that sign the server's certificate (a private CA); default: the system's.
    public var caFile: String?

    public init(url: String) {
        self.url = url
    }

    /// The fields of `type: http`, beside those every executor has (`url` is shared with sql).
    static let fields = ["url", "headers", "secret", "caFile"]

    /// What runs, for the executor's digest: the URL, header names with their written values (a secret by where it
    /// is read from, never its value), the secret's source and the CA file.
    var whatRuns: [String: JSONValue] {
        var object: [String: JSONValue] = [
            "url": .string(url),
            "headers": .object(
                headers.mapValues { value in
                    switch value {
                    case .text(let text): .string(text)
                    case .secret(let source): Self.describe(source)
                    }
                }),
        ]
        if let secret { object["secret"] = Self.describe(secret) }
        if let caFile { object["caFile"] = .string(caFile) }
        return object
    }

    private static func describe(_ source: PasswordSource) -> JSONValue {
        switch source {
        case .environment(let name): .object(["env": .string(name)])
        case .file(let path): .object(["file": .string(path)])
        }
    }
}

extension NodeReader {
    /// `url`, `headers` (text, or `{env: VARIABLE}`/`{file: PATH}` for a credential), `secret` and `caFile`.
    mutating func httpExecutor(_ f: FieldMap, root: Field) -> HTTPExecutorSpec? {
        guard let field = f["url"] else {
            error(root, "missing required field 'url' (where tide POSTs each action)")
            return nil
        }
        guard let url = executorURL(field) else { return nil }
        var spec = HTTPExecutorSpec(url: url)
        if let field = f["headers"] {
            guard case .mapping(let entries) = field.node else {
                error(field, "expected a mapping of header: value")
                return nil
            }
            for (key, value) in entries {
                guard let name = string(field.at(key)) else { continue }
                let place = field.child(name, value)
                guard Self.isHeaderName(name) else {
                    error(place, "'\(Diagnostic.printable(name))' is not an HTTP header name")
                    continue
                }
                guard !Self.tideHeaders.contains(name.lowercased()) else {
                    error(place, "'\(name)' is set by tide itself")
                    continue
                }
                if case .mapping = value {
                    if let source = secretReference(place, what: "header value") {
                        spec.headers[name] = .secret(source)
                    }
                } else if let text = string(place) {
                    guard !text.contains(where: { $0 == "\r" || $0 == "\n" }) else {
                        error(place, "a header value is one line")
                        continue
                    }
                    spec.headers[name] = .text(text)
                }
            }
        }
        if let field = f["secret"] {
            spec.secret = secretReference(field, what: "signing key")
        }
        if let field = f["caFile"], let path = string(field) {
            if path.isEmpty { error(field, "'caFile' is empty (a PEM file of the authorities to trust)") }
            spec.caFile = path
        }
        return spec
    }

    /// Headers every request carries: a manifest does not set them.
    static let tideHeaders: Set<String> = [
        "content-type", "content-length", "host", "idempotency-key", "x-tide-signature", "x-tide-action",
        "transfer-encoding", "connection",
    ]

    static func isHeaderName(_ name: String) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                    || Array("!#$%&'*+-.^_`|~".utf8).contains(byte)
            }
    }

    /// An http(s) URL without credentials: URLs are printed, logged and stored.
    private mutating func executorURL(_ field: Field) -> String? {
        guard let text = string(field) else { return nil }
        let shown = DatabaseURL.redacted(text)
        guard let parsed = URLComponents(string: text), ["http", "https"].contains(parsed.scheme ?? ""),
            parsed.host?.isEmpty == false
        else {
            error(field, "'\(shown)' is not an http:// or https:// URL")
            return nil
        }
        if parsed.user != nil || parsed.password != nil
            || (parsed.query.map { $0.contains(DatabaseURL.secretParameter) } ?? false)
        {
            error(field, "'\(shown)' carries credentials; give them in headers ({env: VARIABLE}), never in the URL")
            return nil
        }
        return text
    }
}
