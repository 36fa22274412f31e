public import TideGit

/// Checks parsed documents as a whole (names unique, references resolve, no dependency cycle) and builds the
/// desired state, or lists every problem.
public enum DesiredStateBuilder {
    public static func build(
        documents: [ManifestDocument], revision: ObjectID?, emptyLocation: SourceLocation?, broken: Set<String> = []
    ) -> Result<DesiredState, ManifestError> {
        var diagnostics: [Diagnostic] = []
        var executors: [String: ExecutorManifest] = [:]
        var environments: [String: EnvironmentManifest] = [:]
        var services: [String: ServiceManifest] = [:]
        var policies: [PolicyManifest] = []
        var analyses: [String: AnalysisManifest] = [:]
        var migrations: [String: MigrationManifest] = [:]
        var firstSeen: [String: SourceLocation] = [:]

        // (nil: files failed to decode, so "no manifests" would mislead.)
        if documents.isEmpty && broken.isEmpty, let emptyLocation {
            diagnostics.append(
                Diagnostic(emptyLocation, "no manifests found (.yaml or .yml files with apiVersion: tide/v1)"))
        }
        for document in documents.sorted(by: { $0.location < $1.location }) {
            let key = "\(document.kind.rawValue)/\(document.name)"
            if let first = firstSeen[key] {
                diagnostics.append(
                    Diagnostic(
                        document.location,
                        "duplicate \(document.kind.rawValue) '\(document.name)' (first defined at \(first))"))
                continue
            }
            firstSeen[key] = document.location
            switch document {
            case .executor(let e): executors[e.name] = e
            case .environment(let e): environments[e.name] = e
            case .service(let s): services[s.name] = s
            case .policy(let p): policies.append(p)
            case .analysis(let a): analyses[a.name] = a
            case .migration(let m): migrations[m.name] = m
            }
        }

        for service in services.values.sorted(by: { $0.location < $1.location }) {
            let owner = "Service '\(service.name)': "
            if executors[service.executor] == nil && !broken.contains("Executor/\(service.executor)") {
                diagnostics.append(
                    Diagnostic(
                        service.executorLocation,
                        "\(owner)spec.executor: executor '\(service.executor)' is not defined"
                            + known(executors.keys)))
            } else if executors[service.executor]?.type == .sql {
                diagnostics.append(
                    Diagnostic(
                        service.executorLocation,
                        "\(owner)spec.executor: '\(service.executor)' is a sql executor, which runs migrations; "
                            + "name it in a Migration and the migration in spec.migrations"))
            }
            for name in service.environmentOrder
            where environments[name] == nil && !broken.contains("Environment/\(name)") {
                diagnostics.append(
                    Diagnostic(
                        service.environments[name]!.location,  // order lists exactly the keys of environments
                        "\(owner)spec.environments: environment '\(name)' is not defined" + known(environments.keys)))
            }
            for (dependency, location) in zip(service.dependsOn, service.dependsOnLocations)
            where services[dependency] == nil && !broken.contains("Service/\(dependency)") {
                diagnostics.append(
                    Diagnostic(
                        location,
                        "\(owner)spec.dependsOn: service '\(dependency)' is not defined" + known(services.keys)))
            }
        }
        diagnostics += cycles(
            in: services.mapValues { Array(zip($0.dependsOn, $0.dependsOnLocations)) }, kind: "Service",
            field: "spec.dependsOn")
        diagnostics += executorDiagnostics(services: Array(services.values), executors: executors)
        for environment in environments.values.sorted(by: { $0.location < $1.location }) {
            for (required, location) in zip(environment.requires, environment.requiresLocations)
            where environments[required] == nil && !broken.contains("Environment/\(required)") {
                diagnostics.append(
                    Diagnostic(
                        location,
                        "Environment '\(environment.name)': spec.requires: environment '\(required)' is not defined"
                            + known(environments.keys)))
            }
        }
        diagnostics += cycles(
            in: environments.mapValues { Array(zip($0.requires, $0.requiresLocations)) }, kind: "Environment",
            field: "spec.requires")

        for service in services.values {
            for analysis in service.strategy.inlineAnalyses { analyses[analysis.name] = analysis }
        }
        for service in services.values.sorted(by: { $0.location < $1.location }) {
            for name in service.strategy.analyses where analyses[name] == nil && !broken.contains("Analysis/\(name)") {
                diagnostics.append(
                    Diagnostic(
                        service.strategyLocation ?? service.location,
                        "Service '\(service.name)': spec.strategy: analysis '\(name)' is not defined"
                            + known(analyses.keys)))
            }
        }
        for migration in migrations.values.sorted(by: { $0.location < $1.location }) {
            if let executor = executors[migration.executor] {
                if executor.type != .sql {
                    diagnostics.append(
                        Diagnostic(
                            migration.executorLocation,
                            "Migration '\(migration.name)': spec.executor: '\(migration.executor)' is a "
                                + "\(executor.type.rawValue) executor; migrations run on an executor of type sql"))
                }
            } else if !broken.contains("Executor/\(migration.executor)") {
                diagnostics.append(
                    Diagnostic(
                        migration.executorLocation,
                        "Migration '\(migration.name)': spec.executor: executor '\(migration.executor)' is not defined"
                            + known(executors.keys)))
            }
        }
        for service in services.values.sorted(by: { $0.location < $1.location }) {
            // spec.migrations serve the environments without a list of their own; each list is checked against
            // the environments it serves.
            var lists: [(path: String, names: [String], places: [SourceLocation], environments: [String])] = [
                (
                    "spec.migrations", service.migrations, service.migrationLocations,
                    service.environmentOrder.filter { service.environments[$0]?.migrations == nil }
                )
            ]
            for environment in service.environmentOrder {
                guard let override = service.environments[environment], let names = override.migrations else {
                    continue
                }
                lists.append(
                    ("spec.environments.\(environment).migrations", names, override.migrationLocations, [environment]))
            }
            for list in lists {
                for (name, location) in zip(list.names, list.places) {
                    guard let migration = migrations[name] else {
                        if !broken.contains("Migration/\(name)") {
                            diagnostics.append(
                                Diagnostic(
                                    location,
                                    "Service '\(service.name)': \(list.path): migration '\(name)' is not defined"
                                        + known(migrations.keys)))
                        }
                        continue
                    }
                    guard let database = executors[migration.executor]?.database else { continue }
                    for environment in list.environments where database.url(for: environment) == nil {
                        diagnostics.append(
                            Diagnostic(
                                location,
                                "Service '\(service.name)': \(list.path): migration '\(name)' runs in \(environment), "
                                    + "but executor '\(migration.executor)' has no url for it (give spec.url or "
                                    + "spec.environments.\(environment).url)"))
                    }
                }
            }
            for (name, location) in zip(service.databases, service.databaseLocations) {
                guard let executor = executors[name] else {
                    if !broken.contains("Executor/\(name)") {
                        diagnostics.append(
                            Diagnostic(
                                location,
                                "Service '\(service.name)': spec.databases: executor '\(name)' is not defined"
                                    + known(executors.keys)))
                    }
                    continue
                }
                if executor.type != .sql {
                    diagnostics.append(
                        Diagnostic(
                            location,
                            "Service '\(service.name)': spec.databases: executor '\(name)' is a "
                                + "\(executor.type.rawValue) executor; name sql executors here"))
                }
            }
        }
        for policy in policies {
            for rule in policy.rules {
                for name in rule.environments where environments[name] == nil {
                    diagnostics.append(
                        Diagnostic(
                            rule.location,
                            "Policy '\(policy.name)': match.environments: environment '\(name)' is not defined"
                                + known(environments.keys)))
                }
            }
        }
        guard diagnostics.isEmpty else { return .failure(ManifestError(diagnostics: diagnostics)) }

        // Environments a version must pass first come first; within one, dependencies before dependents.
        var targets: [DesiredTarget] = []
        let serviceOrder = topologicalOrder(services.mapValues(\.dependsOn))
        for environment in topologicalOrder(environments.mapValues(\.requires)) {
            for name in serviceOrder {
                let service = services[name]!  // the order lists exactly the services
                guard let override = service.environments[environment],
                    let resolved = service.resolvedConfig(for: environment)
                else { continue }
                let id = TargetID(service: name, environment: environment)
                let dependsOn = service.dependsOn.filter { services[$0]?.environments[environment] != nil }
                var target = DesiredTarget(
                    id: id, executor: service.executor,
                    version: override.version ?? service.version ?? "", config: resolved.config,
                    dependsOn: dependsOn, location: service.location, configDigest: resolved.digest)
                target.baseConfigDigest = service.baseConfigDigest ?? DesiredTarget.digest(of: service.config)
                let needed = service.migrations(for: environment)
                if !needed.isEmpty {
                    // The migrations (and what their phases say) are part of the target's desired state: a
                    // migration added, or a failed one fixed, deploys again.
                    target.migrations = needed
                    let phases = needed.map { name -> JSONValue in
                        let migration = migrations[name]
                        return .array(
                            [.string(name)]
                                + MigrationManifest.PhaseName.allCases.map {
                                    .string(migration?.phase($0)?.checksum ?? "-")
                                })
                    }
                    target.configDigest = DesiredTarget.digest(
                        of: .object(["config": .string(resolved.digest), "migrations": .array(phases)]))
                }
                targets.append(target)
            }
        }
        var state = DesiredState(
            revision: revision, executors: executors, environments: environments, services: services,
            targets: targets,
            warnings: migrations.values.sorted { $0.location < $1.location }.flatMap {
                $0.warnings(executor: executors[$0.executor])
            })
        state.policies = policies
        state.analyses = analyses
        state.migrations = migrations
        return .success(state)
    }

    private static func known(_ names: Dictionary<String, some Any>.Keys) -> String {
        names.isEmpty ? "" : " (defined: \(names.sorted().joined(separator: ", ")))"
    }

    /// Each dependency cycle, reported once, at the `dependsOn` entry that closes it. Iterative (an explicit stack,
    /// not recursion), so a chain of 50,000 services is as safe as one of five; a long cycle is shown shortened.
    static func cycles(
        in graph: [String: [(String, SourceLocation)]], kind: String, field: String
    ) -> [Diagnostic] {
        enum Mark { case visiting, done }
        var marks: [String: Mark] = [:]
        var found: [Diagnostic] = []
        for root in graph.keys.sorted() where marks[root] == nil {
            // The path being walked, and for each node on it the next of its edges to follow.
            var path: [String] = [root]
            var next: [Int] = [0]
            marks[root] = .visiting
            while let name = path.last {
                let edges = graph[name] ?? []
                let index = next[next.count - 1]
                guard index < edges.count else {
                    marks[name] = .done
                    path.removeLast()
                    next.removeLast()
                    continue
                }
                next[next.count - 1] = index + 1
                let (dependency, location) = edges[index]
                guard graph[dependency] != nil else { continue }
                switch marks[dependency] {
                case .visiting:
                    let start = path.lastIndex(of: dependency)!  // visiting means it is on the path
                    found.append(
                        Diagnostic(
                            location,
                            "\(kind) '\(name)': \(field): dependency cycle: \(Self.shortened(Array(path[start...]) + [dependency]))"
                        ))
                case .done:
                    continue
                case nil:
                    marks[dependency] = .visiting
                    path.append(dependency)
                    next.append(0)
                }
            }
        }
        return found
    }

    /// `a → b → … → a`, with the middle of a long cycle left out.
    static func shortened(_ names: [String]) -> String {
        guard names.count > 12 else { return names.joined(separator: " → ") }
        return (names.prefix(8) + ["… (\(names.count - 11) more)"] + names.suffix(3)).joined(separator: " → ")
    }

    /// Names with every dependency before its dependents; ties broken by name so plans are stable.
    static func topologicalOrder(_ graph: [String: [String]]) -> [String] {
        // Kahn's algorithm, a level at a time, each level in name order: linear in nodes + edges.
        var blocking = graph.mapValues { Set($0.filter { graph[$0] != nil }).count }
        var dependents: [String: [String]] = [:]
        for (name, dependencies) in graph {
            for dependency in Set(dependencies) where graph[dependency] != nil {
                dependents[dependency, default: []].append(name)
            }
        }
        var order: [String] = []
        order.reserveCapacity(graph.count)
        var level = blocking.filter { $0.value == 0 }.keys.sorted()
        while order.count < graph.count {
            if level.isEmpty {
                // Cycles were rejected before; if one slipped through, keep going in name order rather than hang.
                level = [blocking.keys.sorted()[0]]
            }
            var next: [String] = []
            for name in level {
                order.append(name)
                blocking[name] = nil
                for dependent in dependents[name] ?? [] {
                    guard let count = blocking[dependent] else { continue }
                    blocking[dependent] = count - 1
                    if count == 1 { next.append(dependent) }
                }
            }
            level = next.sorted()
        }
        return order
    }
}
