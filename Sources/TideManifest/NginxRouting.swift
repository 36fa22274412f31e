/// What an nginx executor reads from a target's configuration, `config.nginx`: where nginx listens for the target
/// and where each version runs.
///
///     config:
///       nginx:
///         listen: 8080                       # or "10.0.0.5:8080", "[::1]:8080", "*:8080", "unix:/run/app.sock"
///         backends: {"1.4.2": "10.0.0.7:9001", "1.5.0": "10.0.0.8:9001"}
///
/// The executor renders it into nginx's configuration; validation reads every target's with the same rules, so
/// what a deployment would refuse is refused when the revision is read, at the line that says it.
public struct NginxRouting: Sendable, Hashable {
    /// Something the executor would refuse, at a key path under the target's `config`.
    public struct Problem: Error, Sendable, Hashable, CustomStringConvertible {
        /// e.g. `["nginx", "backends", "1.5.0"]`.
        public var path: [String]
        public var message: String

        public init(_ path: [String], _ message: String) {
            self.path = path
            self.message = message
        }

        public var description: String { "config.\(path.joined(separator: ".")): \(message)" }
    }

    /// As nginx's `listen` directive takes it: a bare port is bound on loopback (`127.0.0.1:8080`).
    public var listen: String
    /// Version → address as written; each is checked when it is needed (`address(of:)`).
    public var backends: [String: JSONValue]

    /// The routing of a configuration, or the first thing wrong with its shape.
    public init(_ config: JSONValue) throws(Problem) {
        let (routing, problems) = Self.read(config)
        guard let routing else { throw problems[0] }  // read returns problems whenever it returns no routing
        self = routing
    }

    /// The routing (nil when nginx could not be configured from it at all) and every problem of the
    /// configuration, the backend addresses included.
    public static func read(_ config: JSONValue) -> (routing: NginxRouting?, problems: [Problem]) {
        guard case .object(let root) = config, case .object(let nginx)? = root["nginx"] else {
            return (
                nil,
                [
                    Problem(
                        ["nginx"], "missing: give listen (where nginx listens) and backends (where each version runs)")
                ]
            )
        }
        var problems: [Problem] = []
        var listen: String?
        switch nginx["listen"] {
        case .int(let port)? where (1...65535).contains(port):
            listen = "127.0.0.1:\(port)"
        case .int(let port)?:
            problems.append(Problem(["nginx", "listen"], "\(port) is not a port (1–65535)"))
        case .string(let text)? where !text.isEmpty && text.allSatisfy(\.isASCIIDigit):
            if let port = Int(text), (1...65535).contains(port) {
                listen = "127.0.0.1:\(port)"
            } else {
                problems.append(Problem(["nginx", "listen"], "\(text) is not a port (1–65535)"))
            }
        case .string(let text)?:
            if isAddress(text, wildcard: true) {
                listen = text
            } else {
                problems.append(
                    Problem(
                        ["nginx", "listen"],
                        "'\(text)' is not a port or host:port (host a name, an IPv4 address, [IPv6] or *; "
                            + "port 1–65535) or unix:/path"))
            }
        case nil:
            problems.append(Problem(["nginx", "listen"], "missing: give the port (or host:port) nginx listens on"))
        case let other?:
            problems.append(Problem(["nginx", "listen"], "expected a port or host:port, found \(other.canonicalJSON)"))
        }
        var backends: [String: JSONValue]?
        switch nginx["backends"] {
        case .object(let map)?:
            backends = map
            for version in map.keys.sorted() {
                if case .string(let text)? = map[version], isAddress(text, wildcard: false) { continue }
                problems.append(Problem(["nginx", "backends", version], addressRule))
            }
        case nil:
            problems.append(Problem(["nginx", "backends"], "missing: give a map of version → host:port"))
        default:
            problems.append(Problem(["nginx", "backends"], "expected a map of version → address"))
        }
        guard let listen, let backends else { return (nil, problems) }
        return (NginxRouting(listen: listen, backends: backends), problems)
    }

    private init(listen: String, backends: [String: JSONValue]) {
        self.listen = listen
        self.backends = backends
    }

    static let addressRule = "expected host:port (port 1–65535) or unix:/path"

    /// Where `version` runs.
    public func address(of version: String) throws(Problem) -> String {
        guard let address = backends[version] else {
            throw Problem(["nginx", "backends"], "has no address for version \(version)")
        }
        guard case .string(let text) = address, Self.isAddress(text, wildcard: false) else {
            throw Problem(["nginx", "backends", version], Self.addressRule)
        }
        return text
    }

    /// `host:port` (port 1–65535; host a DNS name, an IPv4 address, `[IPv6]`, or with `wildcard` `*`) or
    /// `unix:/path`, with nothing nginx would read as syntax.
    public static func isAddress(_ text: String, wildcard: Bool) -> Bool {
        if text.hasPrefix("unix:/") {
            return text.dropFirst(5).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) }
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            text[text.index(after: colon)...].allSatisfy(\.isASCIIDigit), (1...65535).contains(port)
        else { return false }
        return isHost(text[..<colon], wildcard: wildcard)
    }

    static func isHost(_ host: Substring, wildcard: Bool) -> Bool {
        if host == "*" { return wildcard }
        if host.hasPrefix("[") && host.hasSuffix("]") {
            let inner = host.dropFirst().dropLast()
            return inner.contains(":") && inner.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." }
        }
        let labels = host.split(separator: ".", omittingEmptySubsequences: false)
        if labels.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }) {
            // All digits: an IPv4 address, or nothing.
            return labels.count == 4 && labels.allSatisfy { $0.count <= 3 && (Int($0) ?? 256) <= 255 }
        }
        // DNS names (RFC 1123): labels of letters, digits and '-', neither first nor last.
        return !host.isEmpty && host.count <= 253
            && labels.allSatisfy { label in
                (1...63).contains(label.count) && label.first != "-" && label.last != "-"
                    && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            }
    }

    /// The file the executor writes for a target, in its `configDir`.
    public static func fileName(service: String, environment: String) -> String {
        "tide-\(service)-\(environment).conf"
    }

    /// The name of a target's upstream; its other upstreams and variables add a suffix to it.
    public static func upstream(service: String, environment: String) -> String {
        "tide_\(service)_\(environment)".replacingOccurrences(of: "-", with: "_")
    }

    /// Everything a target's file may define that must be unique in one nginx: the file, its upstreams (stable
    /// and candidate for a split, the shadow for a mirror) and its variables. Two targets whose sets meet would
    /// overwrite each other's file or make `nginx -t` fail with a duplicate.
    public static func definedNames(service: String, environment: String) -> Set<String> {
        let base = upstream(service: service, environment: environment)
        return Set(
            ["file \(fileName(service: service, environment: environment))"]
                + ["", "_shadow", "_stable", "_candidate"].map { "upstream \(base)\($0)" }
                + ["_pool", "_mirrored"].map { "variable $\(base)\($0)" })
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
