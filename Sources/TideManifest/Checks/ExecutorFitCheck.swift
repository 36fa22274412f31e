/// What the built-in executors would refuse once a rollout reaches them (`DesiredStateBuilder+Executors.swift`).
enum ExecutorFitCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        DesiredStateBuilder.executorDiagnostics(services: set.servicesInOrder, executors: set.executors)
    }
}
