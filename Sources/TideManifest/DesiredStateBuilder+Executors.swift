extension DesiredStateBuilder {
    /// What the built-in executors would refuse once a rollout reaches them, found from the manifests alone: an
    /// nginx target's `config.nginx` (listen, backend addresses, a backend for every desired version), two nginx
    /// targets that would share a listen address or a name in one nginx, a shadow rollout on a flags executor.
    /// `services` in file order (problems are reported in it).
    static func executorDiagnostics(
        services: [ServiceManifest], executors: [String: ExecutorManifest]
    ) -> [Diagnostic] {
        var found: [Diagnostic] = []
        var nginx = NginxClaims()
        for service in services {
            guard let executor = executors[service.executor] else { continue }
            switch executor.type {
            case .nginx: found += nginxDiagnostics(service, executor, claims: &nginx)
            case .flags: found += flagsDiagnostics(service, executor)
            case .command, .plugin, .sql, .http: continue
            }
        }
        found += nginx.conflicts
        var seen: Set<Diagnostic> = []
        // A problem in spec.config is found once per environment; it is reported once.
        return found.filter { seen.insert($0).inserted }
    }

    private static func nginxDiagnostics(
        _ service: ServiceManifest, _ executor: ExecutorManifest, claims: inout NginxClaims
    ) -> [Diagnostic] {
        let owner = "Service '\(service.name)': "
        let refusal = "; nginx executor '\(executor.name)' would refuse the deployment"
        var found: [Diagnostic] = []
        /// A version without a backend, reported once per place that sets it, with the environments it is for.
        struct Unrouted {
            var version: String
            var at: (field: String, location: SourceLocation)
            var backends: String
            var environments: [String]
        }
        var unrouted: [Unrouted] = []
        for environment in service.environmentOrder {
            guard let resolved = service.resolvedConfig(for: environment) else { continue }
            func field(_ path: [String]) -> (field: String, location: SourceLocation) {
                let place = service.configField(path, environment: environment)
                return (place.scope + path.map { "." + $0 }.joined(), place.location)
            }
            let (routing, problems) = NginxRouting.read(resolved.config)
            for problem in problems {
                let (name, location) = field(problem.path)
                found.append(Diagnostic(location, "\(owner)\(name): \(problem.message)\(refusal)"))
            }
            guard let routing else { continue }
            let version = service.environments[environment]?.version ?? service.version ?? ""
            if routing.backends[version] == nil {
                let backends = field(["nginx", "backends"])
                let at = service.versionField(environment: environment)
                let described = "\(backends.field) (\(backends.location))"
                if let index = unrouted.firstIndex(where: {
                    $0.version == version && $0.at.location == at.location && $0.backends == described
                }) {
                    unrouted[index].environments.append(environment)
                } else {
                    unrouted.append(
                        Unrouted(version: version, at: at, backends: described, environments: [environment]))
                }
            }
            claims.add(
                NginxClaims.Claim(
                    executor: executor.name, directory: executor.path ?? "nginx",
                    target: TargetID(service: service.name, environment: environment), listen: routing.listen,
                    listenAt: field(["nginx", "listen"]), serviceAt: service.location))
        }
        for entry in unrouted {
            found.append(
                Diagnostic(
                    entry.at.location,
                    "\(owner)\(entry.at.field): \(entry.version) (desired in \(entry.environments.joined(separator: ", "))) "
                        + "has no backend in \(entry.backends): add \"\(entry.version)\": host:port there\(refusal)"))
        }
        return found
    }

    private static func flagsDiagnostics(_ service: ServiceManifest, _ executor: ExecutorManifest) -> [Diagnostic] {
        guard service.strategy.type == .shadow else { return [] }
        return [
            Diagnostic(
                service.strategyLocation ?? service.location,
                "Service '\(service.name)': spec.strategy.type: a shadow rollout mirrors traffic, which flags executor "
                    + "'\(executor.name)' cannot do (applications split by user themselves); use a traffic "
                    + "executor (nginx) or another strategy")
        ]
    }
}

/// The listen addresses and names nginx targets take in each nginx (one per include directory), to find two that
/// would meet: nginx serves only the first server on an address, and refuses a name defined twice.
struct NginxClaims {
    struct Claim {
        var executor: String
        var directory: String
        var target: TargetID
        var listen: String
        var listenAt: (field: String, location: SourceLocation)
        var serviceAt: SourceLocation
    }

    private var listens: [String: [String: Claim]] = [:]
    private var names: [String: [String: Claim]] = [:]
    private(set) var conflicts: [Diagnostic] = []

    mutating func add(_ claim: Claim) {
        let owner = "Service '\(claim.target.service)': "
        let place = "in nginx executor '\(claim.executor)' (\(claim.directory))"
        if let other = listens[claim.directory, default: [:]][claim.listen] {
            conflicts.append(
                Diagnostic(
                    claim.listenAt.location,
                    "\(owner)\(claim.listenAt.field): \(claim.target) would listen on \(claim.listen), where "
                        + "\(other.target) listens (\(other.listenAt.location)) \(place); nginx would send both "
                        + "targets' requests to one of them: give each its own listen"))
        } else {
            listens[claim.directory, default: [:]][claim.listen] = claim
        }
        let defined = NginxRouting.definedNames(service: claim.target.service, environment: claim.target.environment)
        for name in defined.sorted() {
            guard let other = names[claim.directory, default: [:]][name] else { continue }
            let harm =
                name.hasPrefix("file ") ? "each would overwrite the other's" : "nginx -t would refuse the duplicate"
            conflicts.append(
                Diagnostic(
                    claim.serviceAt,
                    "\(owner)\(claim.target) and \(other.target) (\(other.serviceAt)) both need nginx \(name) "
                        + "\(place), and \(harm): rename a service or an environment"))
            return
        }
        for name in defined { names[claim.directory, default: [:]][name] = claim }
    }
}
