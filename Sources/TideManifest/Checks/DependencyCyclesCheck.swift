/// No cycle in services' `dependsOn`.
enum DependencyCyclesCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        DesiredStateBuilder.cycles(
            in: set.services.mapValues { Array(zip($0.dependsOn, $0.dependsOnLocations)) }, kind: "Service",
            field: "spec.dependsOn")
    }
}
