import TideGit

extension DesiredStateBuilder {
    /// A valid build (what `build` checked and returned), kept for the next revision to start from.
    struct Built: Sendable {
        var set: ManifestSet
        var state: DesiredState
    }

    /// `build` of the same documents with `services` replacing the services of the same names — without checking
    /// and planning the other 10,000 again — or nil when the change can reach beyond those services (the caller
    /// builds in full).
    ///
    /// Taken only when every replaced service keeps every reference the whole-state checks follow (see
    /// `sameReferences`): then the checks that read references find for the new set what they found for the old
    /// one (nothing: `built` was valid), and only what reads a service's own configuration is run again — the
    /// executor checks, for the replaced services (for every service when one of them is routed by nginx, whose
    /// claims span services). Targets keep their places (the environments and `dependsOn` that order them are
    /// unchanged); the replaced services' targets are made again.
    ///
    /// Must never happen: a state this returns that differs from what `build` returns for the same documents,
    /// diagnostics included (a problem it cannot rule out sends the caller to `build`, which reports it in
    /// order). `IncrementalBuildTests` compares the two over random commit sequences.
    static func rebuilt(_ built: Built, replacing services: [ServiceManifest], revision: ObjectID?) -> Built? {
        var set = built.set
        var nginx = false
        for service in services {
            guard let old = set.services[service.name], sameReferences(old, service) else { return nil }
            nginx = nginx || set.executors[service.executor]?.type == .nginx
            set.services[service.name] = service
        }
        let executorProblems = executorDiagnostics(
            services: nginx ? set.servicesInOrder : services.sorted { $0.location < $1.location },
            executors: set.executors)
        guard executorProblems.isEmpty else { return nil }
        var state = built.state
        state.revision = revision
        state.services = set.services
        var replacements: [(offset: Int, target: DesiredTarget)] = []
        for service in services {
            for environment in service.environmentOrder {
                guard let offset = state.offset(of: TargetID(service: service.name, environment: environment)),
                    let target = target(service, in: environment, set)
                else { return nil }
                replacements.append((offset, target))
            }
        }
        state.replaceTargets(replacements)
        return Built(set: set, state: state)
    }

    /// Whether two versions of a service refer to the same things: executor, environments, `dependsOn`,
    /// migrations (each environment's too), databases and analyses (named and inline).
    static func sameReferences(_ old: ServiceManifest, _ new: ServiceManifest) -> Bool {
        old.name == new.name && old.executor == new.executor && old.environmentOrder == new.environmentOrder
            && old.dependsOn == new.dependsOn && old.migrations == new.migrations && old.databases == new.databases
            && old.strategy.analyses == new.strategy.analyses
            && old.strategy.inlineAnalyses == new.strategy.inlineAnalyses
            && old.environmentOrder.allSatisfy { old.environments[$0]?.migrations == new.environments[$0]?.migrations }
    }
}
