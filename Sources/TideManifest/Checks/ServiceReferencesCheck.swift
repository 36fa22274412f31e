/// A service's executor, environments and `dependsOn` are defined (its executor is not a sql one).
enum ServiceReferencesCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for service in set.servicesInOrder {
            let owner = "Service '\(service.name)': "
            if set.executors[service.executor] == nil && !set.isBroken("Executor", service.executor) {
                found.append(
                    Diagnostic(
                        service.executorLocation,
                        "\(owner)spec.executor: executor '\(service.executor)' is not defined"
                            + ManifestSet.known(set.executors.keys)))
            } else if set.executors[service.executor]?.type == .sql {
                found.append(
                    Diagnostic(
                        service.executorLocation,
                        "\(owner)spec.executor: '\(service.executor)' is a sql executor, which runs migrations; "
                            + "name it in a Migration and the migration in spec.migrations"))
            }
            for name in service.environmentOrder
            where set.environments[name] == nil && !set.isBroken("Environment", name) {
                found.append(
                    Diagnostic(
                        service.environments[name]!.location,  // order lists exactly the keys of environments
                        "\(owner)spec.environments: environment '\(name)' is not defined"
                            + ManifestSet.known(set.environments.keys)))
            }
            for (dependency, location) in zip(service.dependsOn, service.dependsOnLocations)
            where set.services[dependency] == nil && !set.isBroken("Service", dependency) {
                found.append(
                    Diagnostic(
                        location,
                        "\(owner)spec.dependsOn: service '\(dependency)' is not defined"
                            + ManifestSet.known(set.services.keys)))
            }
        }
        return found
    }
}
