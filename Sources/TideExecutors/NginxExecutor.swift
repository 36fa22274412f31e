import Foundation
public import TideManifest

/// `type: nginx`: moves traffic with a real nginx. For each target it writes one file,
/// `configDir/tide-SERVICE-ENVIRONMENT.conf`, that the operator's `nginx.conf` includes inside `http { }`, then
/// checks it with the executor's `test` command (`nginx -t`) and reloads nginx (`reload`). When the test or the
/// reload fails, the previous file is put back (and nginx reloaded with it), so nginx keeps serving the old
/// configuration.
///
/// The service's config says where each version runs and where nginx listens:
///
///     config:
///       nginx:
///         listen: 8080                       # or "127.0.0.1:8080"
///         backends: {"1.4.2": "127.0.0.1:9001", "1.5.0": "127.0.0.1:9002"}
///
/// (read by `NginxRouting`, whose rules validation applies to every target when a revision is read).
///
/// Canary and rolling weights become a weighted upstream; a blue-green promote switches the upstream whole; a
/// shadow mirrors the strategy's share of requests to the candidate (answers discarded); an A/B split maps a header or cookie, or
/// buckets a user key with nginx's `split_clients` (MurmurHash2 of the key, not the flags executor's hash).
public struct NginxExecutor: Executor {
    public let manifest: ExecutorManifest
    public let workingDirectory: String
    /// What `test` and `reload` processes' environment is built from.
    public let environment: ExecutorEnvironment

    public init(
        manifest: ExecutorManifest, workingDirectory: String, environment: ExecutorEnvironment = .configured
    ) {
        self.manifest = manifest
        self.workingDirectory = workingDirectory
        self.environment = environment
    }

    struct NginxError: Error, CustomStringConvertible {
        var description: String
        /// How `test` or `reload` ended when that was transient (exit 75, a timeout): the action ends the same
        /// way, so it is retried and never fails the candidate.
        var transient: ActionResult.Outcome? = nil
    }

    var configDirectory: String {
        FlagsExecutor.resolve(manifest.path ?? "nginx", in: workingDirectory)
    }

    func file(for request: ActionRequest) -> String {
        (configDirectory as NSString).appendingPathComponent(
            NginxRouting.fileName(service: request.service, environment: request.environment))
    }

    public func perform(_ request: ActionRequest) async -> ActionResult {
        let start = Date()
        do {
            // Targets of one nginx share its configuration and its reload: one change at a time.
            let message = try await KeyedLock.shared.withLock(configDirectory) { try await apply(request) }
            return ActionResult(outcome: .succeeded, standardOutput: message, duration: Date().timeIntervalSince(start))
        } catch let error as NginxError {
            return ActionResult(
                outcome: error.transient ?? .exited(1), standardError: "\(error)",
                duration: Date().timeIntervalSince(start))
        } catch {
            // Writing the include file failed (a full disk, a missing permission on the directory): not the
            // candidate's doing.
            return ActionResult(
                outcome: .unavailable("\(error)"), standardError: "\(error)", duration: Date().timeIntervalSince(start))
        }
    }

    /// The configuration for one target after `request`.
    func render(_ request: ActionRequest, routing: NginxRouting) throws -> String? {
        let name = NginxRouting.upstream(service: request.service, environment: request.environment)
        let candidate = try routing.address(of: request.version)
        // Only the actions that keep both sides need the stable side's address (a rollback's previous version
        // is the failed one, whose address may be what failed) — read from the stable side's own config: in a
        // config-only change both sides have one version, and only their configs say where each runs.
        let twoSided =
            [.deploy, .setWeight, .mirror, .split].contains(request.action) && request.weight < 100
            || [.mirror, .split].contains(request.action)
        let stableRouting = try request.previousConfig.map { try NginxRouting($0) } ?? routing
        var stable = try twoSided ? request.previousVersion.map { try stableRouting.address(of: $0) } : nil
        // Both sides at one address (a config change that does not move the backend): one server takes it all.
        if stable == candidate && [.deploy, .setWeight].contains(request.action) { stable = nil }
        var out = "# Written by tide for \(request.service)@\(request.environment) (\(request.action.rawValue) "
        out += "\(request.version), revision \(request.revision.prefix(12))). Do not edit.\n"
        var location = "        proxy_pass http://\(name);\n"
        let weighted =
            (request.action == .deploy || request.action == .setWeight) && stable != nil && request.weight < 100
        switch request.action {
        case .remove:
            return nil
        case .deploy where weighted, .setWeight where weighted:
            // Weighted upstream; nginx has no weight 0, so at 0 % the candidate is not listed.
            out += "upstream \(name) {\n"
            if let stable { out += "    server \(stable) weight=\(max(1, 100 - request.weight));\n" }
            if request.weight > 0 { out += "    server \(candidate) weight=\(request.weight);\n" }
            out += "}\n"
        case .mirror:
            guard let stable else { throw NginxError(description: "nothing to mirror from: no stable version") }
            out += "upstream \(name) {\n    server \(stable);\n}\n"
            out += "upstream \(name)_shadow {\n    server \(candidate);\n}\n"
            // The share mirrored (the request's weight): split_clients on the request id picks which copies go;
            // the others end in the internal location at once.
            let share = max(0, min(100, request.weight))
            var sample = ""
            if share < 100 {
                out += "split_clients \"$request_id\" $\(name)_mirrored {\n    \(share)% \"1\";\n    * \"\";\n}\n"
                sample = "        if ($\(name)_mirrored = \"\") {\n            return 204;\n        }\n"
            }
            location =
                "        mirror /_tide_shadow;\n        mirror_request_body on;\n        proxy_pass http://\(name);\n"
                + "    }\n    location = /_tide_shadow {\n        internal;\n" + sample
                + "        proxy_pass http://\(name)_shadow$request_uri;\n"
        case .split:
            guard let stable else { throw NginxError(description: "nothing to split: no stable version") }
            out += "upstream \(name)_stable {\n    server \(stable);\n}\n"
            out += "upstream \(name)_candidate {\n    server \(candidate);\n}\n"
            let variable = "$\(name)_pool"
            switch Self.match(request.traffic) {
            case .header(let header, let value)?:
                out += "map $http_\(Self.variableName(header)) \(variable) {\n    default \(name)_stable;\n"
                out += "    \(Self.quoted(value)) \(name)_candidate;\n}\n"
            case .cookie(let cookie, let value)?:
                out += "map $cookie_\(Self.variableName(cookie)) \(variable) {\n    default \(name)_stable;\n"
                out += "    \(Self.quoted(value)) \(name)_candidate;\n}\n"
            case .userKey(let header, let percent)?:
                out += "split_clients \"$http_\(Self.variableName(header))\" \(variable) {\n"
                out += "    \(percent)% \(name)_candidate;\n    * \(name)_stable;\n}\n"
            case nil:
                throw NginxError(description: "split without a match")
            }
            location = "        proxy_pass http://\(variable);\n"
        default:
            // promote, rollback, a first deploy, a recreate deploy, set-weight at 100: one version takes it all.
            out += "upstream \(name) {\n    server \(candidate);\n}\n"
        }
        out += "server {\n    listen \(routing.listen);\n    location / {\n\(location)    }\n}\n"
        return out
    }

    static func match(_ traffic: JSONValue?) -> ABStrategy.Match? {
        guard case .object(let t)? = traffic, case .object(let m)? = t["match"] else { return nil }
        func pair(_ key: String, _ a: String, _ b: String) -> (String, JSONValue)? {
            guard case .object(let o)? = m[key], case .string(let first)? = o[a], let second = o[b] else { return nil }
            return (first, second)
        }
        if let (name, value) = pair("header", "name", "value"), case .string(let v) = value {
            return .header(name: name, value: v)
        }
        if let (name, value) = pair("cookie", "name", "value"), case .string(let v) = value {
            return .cookie(name: name, value: v)
        }
        if let (header, value) = pair("userKey", "header", "percent"), case .int(let p) = value {
            return .userKey(header: header, percent: Int(p))
        }
        return nil
    }

    /// `X-User-Id` → `x_user_id`, as nginx names header variables.
    static func variableName(_ header: String) -> String {
        String(header.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
    }

    static func quoted(_ value: String) -> String {
        "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    private func apply(_ request: ActionRequest) async throws -> String {
        switch request.action {
        case .health:
            return try await health(request)
        case .scaleDown:
            return "the old side is no longer routed to"
        case .measure:
            throw NginxError(description: "the nginx executor takes no measurements")
        default:
            break
        }
        let routing = try NginxRouting(request.config)
        let rendered = try render(request, routing: routing)
        let path = file(for: request)
        try FileManager.default.createDirectory(atPath: configDirectory, withIntermediateDirectories: true)
        let previous = try? Data(contentsOf: URL(fileURLWithPath: path))
        func restore() {
            if let previous {
                try? previous.write(to: URL(fileURLWithPath: path), options: .atomic)
            } else {
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        if let rendered {
            try Data(rendered.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
        let test = await run(manifest.nginxTest, request)
        guard test.succeeded else {
            restore()
            let lines = test.standardError.split(separator: "\n").map(String.init)
            let why = lines.first { $0.contains("[emerg]") } ?? lines.last { !$0.isEmpty } ?? test.summary
            throw NginxError(
                description: "nginx -t rejected the new configuration; the old one is kept: \(why)",
                transient: test.isTransient ? test.outcome : nil)
        }
        let before = Self.workers()
        let reload = await run(manifest.nginxReload, request)
        guard reload.succeeded else {
            restore()
            _ = await run(manifest.nginxReload, request)
            let why = reload.standardError.split(separator: "\n").last.map(String.init) ?? reload.summary
            throw NginxError(
                description: "nginx reload failed; the old configuration is back: \(why)",
                transient: reload.isTransient ? reload.outcome : nil)
        }
        await Self.waitForNewWorkers(replacing: before)
        return "\(path) written, nginx reloaded"
    }

    /// `nginx -s reload` returns once the master has the signal; the new configuration serves only once new
    /// workers run and the old ones stopped accepting. Waits (up to 5 s) for a worker that was not there before
    /// and for the old ones to leave, so the next step (an analysis) measures the traffic split it asked for.
    static func waitForNewWorkers(replacing before: Set<Int32>) async {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let now = workers()
            if !now.subtracting(before).isEmpty && now.isDisjoint(with: before) { return }
            await Monotonic.pause(seconds: 0.02)
        }
    }

    /// The pids of running nginx worker processes (from /proc; empty where there is no /proc).
    static func workers() -> Set<Int32> {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var pids: Set<Int32> = []
        for entry in entries {
            guard let pid = Int32(entry),
                let command = try? String(contentsOfFile: "/proc/\(entry)/cmdline", encoding: .utf8),
                command.hasPrefix("nginx: worker process")
            else { continue }
            pids.insert(pid)
        }
        return pids
    }

    /// The version's backend answers (any status below 500) — directly, not through nginx.
    private func health(_ request: ActionRequest) async throws -> String {
        let routing = try NginxRouting(request.config)
        let address = try routing.address(of: request.version)
        let (status, _) = try await HTTPMeasurements.get("http://\(address)/", headers: [:], timeout: 5)
        guard status < 500 else {
            throw NginxError(description: "\(request.version) at \(address) answered HTTP \(status)")
        }
        return "\(request.version) at \(address) answered HTTP \(status)"
    }

    private func run(_ argv: [String], _ request: ActionRequest) async -> ActionResult {
        let command = ExecutorManifest(
            name: manifest.name, location: manifest.location, command: argv, timeout: manifest.timeout,
            environment: manifest.environment)
        return await CommandExecutor(manifest: command, workingDirectory: workingDirectory, environment: environment)
            .perform(request)
    }
}
