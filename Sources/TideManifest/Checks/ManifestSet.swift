/// The documents of one revision, by kind and name — what the whole-state checks read. A duplicate is reported
/// while collecting and left out; the analyses services define inline are included.
struct ManifestSet {
    var executors: [String: ExecutorManifest] = [:]
    var environments: [String: EnvironmentManifest] = [:]
    var services: [String: ServiceManifest] = [:]
    var policies: [PolicyManifest] = []
    var analyses: [String: AnalysisManifest] = [:]
    var migrations: [String: MigrationManifest] = [:]
    /// `Kind/name` of the documents that failed to decode: a reference to one is not reported as undefined too.
    var broken: Set<String> = []

    /// The services' names in file order, as collected (documents are collected in file order).
    private var serviceOrder: [String] = []

    /// The services in file order (checks report in it).
    var servicesInOrder: [ServiceManifest] { serviceOrder.compactMap { services[$0] } }

    /// Whether `kind`/`name` failed to decode.
    func isBroken(_ kind: String, _ name: String) -> Bool { broken.contains("\(kind)/\(name)") }

    /// Collects `documents`; the diagnostics are the duplicates, and "no manifests" for an empty revision.
    static func collect(
        _ documents: [ManifestDocument], emptyLocation: SourceLocation?, broken: Set<String>
    ) -> (ManifestSet, [Diagnostic]) {
        var set = ManifestSet(broken: broken)
        var diagnostics: [Diagnostic] = []
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
            case .executor(let e): set.executors[e.name] = e
            case .environment(let e): set.environments[e.name] = e
            case .service(let s):
                set.services[s.name] = s
                set.serviceOrder.append(s.name)
            case .policy(let p): set.policies.append(p)
            case .analysis(let a): set.analyses[a.name] = a
            case .migration(let m): set.migrations[m.name] = m
            }
        }
        for service in set.services.values {
            for analysis in service.strategy.inlineAnalyses { set.analyses[analysis.name] = analysis }
        }
        return (set, diagnostics)
    }

    /// " (defined: a, b)" after "… is not defined", or nothing when none is.
    static func known(_ names: Dictionary<String, some Any>.Keys) -> String {
        names.isEmpty ? "" : " (defined: \(names.sorted().joined(separator: ", ")))"
    }
}

/// One check of a revision's documents as a whole (references resolve, no cycle, what an executor would refuse):
/// one file each, run in order from `DesiredStateBuilder.checks`, every problem reported.
protocol ManifestCheck: Sendable {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic]
}
