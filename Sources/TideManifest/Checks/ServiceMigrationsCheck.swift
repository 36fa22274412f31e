/// A service's migrations (its `spec.migrations` and each environment's own list) are defined and have a
/// database url in every environment they serve; its `spec.databases` name sql executors.
enum ServiceMigrationsCheck: ManifestCheck {
    typealias List = (path: String, names: [String], places: [SourceLocation], environments: [String])

    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        set.servicesInOrder.flatMap { service in
            lists(of: service).flatMap { migrationDiagnostics(service, $0, set) } + databaseDiagnostics(service, set)
        }
    }

    /// spec.migrations serve the environments without a list of their own; each list is checked against the
    /// environments it serves.
    static func lists(of service: ServiceManifest) -> [List] {
        var lists: [List] = [
            (
                "spec.migrations", service.migrations, service.migrationLocations,
                service.environmentOrder.filter { service.environments[$0]?.migrations == nil }
            )
        ]
        for environment in service.environmentOrder {
            guard let override = service.environments[environment], let names = override.migrations else { continue }
            lists.append(
                ("spec.environments.\(environment).migrations", names, override.migrationLocations, [environment]))
        }
        return lists
    }

    static func migrationDiagnostics(_ service: ServiceManifest, _ list: List, _ set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for (name, location) in zip(list.names, list.places) {
            guard let migration = set.migrations[name] else {
                if !set.isBroken("Migration", name) {
                    found.append(
                        Diagnostic(
                            location,
                            "Service '\(service.name)': \(list.path): migration '\(name)' is not defined"
                                + ManifestSet.known(set.migrations.keys)))
                }
                continue
            }
            guard let database = set.executors[migration.executor]?.database else { continue }
            for environment in list.environments where database.url(for: environment) == nil {
                found.append(
                    Diagnostic(
                        location,
                        "Service '\(service.name)': \(list.path): migration '\(name)' runs in \(environment), "
                            + "but executor '\(migration.executor)' has no url for it (give spec.url or "
                            + "spec.environments.\(environment).url)"))
            }
        }
        return found
    }

    static func databaseDiagnostics(_ service: ServiceManifest, _ set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for (name, location) in zip(service.databases, service.databaseLocations) {
            guard let executor = set.executors[name] else {
                if !set.isBroken("Executor", name) {
                    found.append(
                        Diagnostic(
                            location,
                            "Service '\(service.name)': spec.databases: executor '\(name)' is not defined"
                                + ManifestSet.known(set.executors.keys)))
                }
                continue
            }
            if executor.type != .sql {
                found.append(
                    Diagnostic(
                        location,
                        "Service '\(service.name)': spec.databases: executor '\(name)' is a "
                            + "\(executor.type.rawValue) executor; name sql executors here"))
            }
        }
        return found
    }
}
