/// An environment's `requires` are defined, without a cycle.
enum EnvironmentRequiresCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for environment in set.environments.values.sorted(by: { $0.location < $1.location }) {
            for (required, location) in zip(environment.requires, environment.requiresLocations)
            where set.environments[required] == nil && !set.isBroken("Environment", required) {
                found.append(
                    Diagnostic(
                        location,
                        "Environment '\(environment.name)': spec.requires: environment '\(required)' is not defined"
                            + ManifestSet.known(set.environments.keys)))
            }
        }
        return found
            + DesiredStateBuilder.cycles(
                in: set.environments.mapValues { Array(zip($0.requires, $0.requiresLocations)) },
                kind: "Environment", field: "spec.requires")
    }
}
