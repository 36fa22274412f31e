public import TideGit

/// Checks parsed documents as a whole (names unique, references resolve, no dependency cycle) and builds the
/// desired state, or lists every problem.
public enum DesiredStateBuilder {
    /// The whole-state checks, in the order their problems are listed (a new check: one file in `Checks/`, and
    /// its line here).
    static let checks: [any ManifestCheck.Type] = [
        ServiceReferencesCheck.self, DependencyCyclesCheck.self, ExecutorFitCheck.self,
        EnvironmentRequiresCheck.self, AnalysisReferencesCheck.self, MigrationExecutorCheck.self,
        ServiceMigrationsCheck.self, PolicyEnvironmentsCheck.self,
    ]

    public static func build(
        documents: [ManifestDocument], revision: ObjectID?, emptyLocation: SourceLocation?, broken: Set<String> = []
    ) -> Result<DesiredState, ManifestError> {
        built(documents: documents, revision: revision, emptyLocation: emptyLocation, broken: broken).map(\.state)
    }

    /// `build`, keeping the checked set with the state (for `rebuilt`).
    static func built(
        documents: [ManifestDocument], revision: ObjectID?, emptyLocation: SourceLocation?, broken: Set<String>
    ) -> Result<Built, ManifestError> {
        let (set, collected) = ManifestSet.collect(documents, emptyLocation: emptyLocation, broken: broken)
        let diagnostics = collected + checks.flatMap { $0.diagnostics(in: set) }
        guard diagnostics.isEmpty else { return .failure(ManifestError(diagnostics: diagnostics)) }
        var state = DesiredState(
            revision: revision, executors: set.executors, environments: set.environments, services: set.services,
            targets: targets(of: set),
            warnings: set.migrations.values.sorted { $0.location < $1.location }.flatMap {
                $0.warnings(executor: set.executors[$0.executor])
            })
        state.policies = set.policies
        state.analyses = set.analyses
        state.migrations = set.migrations
        return .success(Built(set: set, state: state))
    }

    /// Every target: environments a version must pass first come first; within one, dependencies before
    /// dependents.
    static func targets(of set: ManifestSet) -> [DesiredTarget] {
        var targets: [DesiredTarget] = []
        let serviceOrder = topologicalOrder(set.services.mapValues(\.dependsOn))
        for environment in topologicalOrder(set.environments.mapValues(\.requires)) {
            for name in serviceOrder {
                let service = set.services[name]!  // the order lists exactly the services
                if let target = target(service, in: environment, set) { targets.append(target) }
            }
        }
        return targets
    }

    /// The service's target in `environment`, when it runs there.
    static func target(_ service: ServiceManifest, in environment: String, _ set: ManifestSet) -> DesiredTarget? {
        guard let override = service.environments[environment], let resolved = service.resolvedConfig(for: environment)
        else { return nil }
        let dependsOn = service.dependsOn.filter { set.services[$0]?.environments[environment] != nil }
        var target = DesiredTarget(
            id: TargetID(service: service.name, environment: environment), executor: service.executor,
            version: override.version ?? service.version ?? "", config: resolved.config, dependsOn: dependsOn,
            location: service.location, configDigest: resolved.digest)
        target.baseConfigDigest = service.baseConfigDigest ?? DesiredTarget.digest(of: service.config)
        let needed = service.migrations(for: environment)
        guard !needed.isEmpty else { return target }
        // The migrations (and what their phases say) are part of the target's desired state: a migration added,
        // or a failed one fixed, deploys again.
        target.migrations = needed
        let phases = needed.map { name -> JSONValue in
            let migration = set.migrations[name]
            return .array(
                [.string(name)]
                    + MigrationManifest.PhaseName.allCases.map { .string(migration?.phase($0)?.checksum ?? "-") })
        }
        target.configDigest = DesiredTarget.digest(
            of: .object(["config": .string(resolved.digest), "migrations": .array(phases)]))
        return target
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
