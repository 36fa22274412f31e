/// The environments a Policy's rules match are defined.
enum PolicyEnvironmentsCheck: ManifestCheck {
    static func diagnostics(in set: ManifestSet) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for policy in set.policies {
            for rule in policy.rules {
                for name in rule.environments where set.environments[name] == nil {
                    found.append(
                        Diagnostic(
                            rule.location,
                            "Policy '\(policy.name)': match.environments: environment '\(name)' is not defined"
                                + ManifestSet.known(set.environments.keys)))
                }
            }
        }
        return found
    }
}
