/// The analyses a service's strategy names are defined (as Analysis documents or inline).
enum AnalysisReferencesCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for service in set.servicesInOrder {
            for name in service.strategy.analyses
            where set.analyses[name] == nil && !set.isBroken("Analysis", name) {
                found.append(
                    Diagnostic(
                        service.strategyLocation ?? service.location,
                        "Service '\(service.name)': spec.strategy: analysis '\(name)' is not defined"
                            + ManifestSet.known(set.analyses.keys)))
            }
        }
        return found
    }
}
