import Foundation

extension NodeReader {
    mutating func service(_ spec: Field, name: String, at: SourceLocation) -> ServiceManifest? {
        guard
            let f = fields(
                spec,
                allowed: [
                    "executor", "version", "config", "environments", "dependsOn", "strategy", "hotfix", "rollback",
                    "migrations", "databases",
                ] + Resilience.serviceFields,
                required: ["executor", "environments"])
        else { return nil }
        let before = diagnostics.count
        let settings = resilience(f)

        var executor = ""
        var executorLocation = at
        if let field = f["executor"], let text = self.name(field) {
            executor = text
            executorLocation = location(field.node)
        }
        var version: String?
        var versionLocation: SourceLocation?
        if let field = f["version"] {
            version = self.version(field)
            versionLocation = location(field.node)
        }
        var config = JSONValue.object([:])
        var configLocations = ServiceManifest.ConfigLocations()
        if let field = f["config"], let value = configMapping(field) {
            config = value
            valueLocations(field.node, into: &configLocations.base)
        }

        var environments: [String: ServiceManifest.EnvironmentOverride] = [:]
        var order: [String] = []
        if let field = f["environments"] {
            if case .mapping(let mapping) = field.node {
                if mapping.count == 0 { error(field, "list at least one environment") }
                for (key, value) in mapping {
                    guard let envName = self.name(field.at(key)) else { continue }
                    let place = field.child(envName, value)
                    var override = ServiceManifest.EnvironmentOverride(location: location(key))
                    if case .scalar = value, value.tagName == .null {
                        // `prod:` with nothing after it: runs there with the defaults.
                    } else if let g = fields(place, allowed: ["version", "config", "migrations"]) {
                        if let v = g["version"] {
                            override.version = self.version(v)
                            override.versionLocation = location(v.node)
                        }
                        if let c = g["config"], let value = configMapping(c) {
                            override.config = value
                            valueLocations(c.node, into: &configLocations.environments[envName, default: [:]])
                        }
                        if let m = g["migrations"] {
                            (override.migrations, override.migrationLocations) = nameList(m, kind: "migration")
                        }
                    }
                    if override.version == nil && version == nil && f["version"] == nil {
                        error(
                            place.at(key),
                            "no version for this environment; set spec.version or \(place.path).version")
                    }
                    environments[envName] = override
                    order.append(envName)
                }
            } else {
                error(field, "expected a mapping of environment names, found \(describe(field.node))")
            }
        }

        var dependsOn: [String] = []
        var dependsOnLocations: [SourceLocation] = []
        if let field = f["dependsOn"], let items = stringList(field) {
            for (text, item) in items {
                if !Naming.isValidName(text) {
                    error(field.at(item), "'\(text)' is not a valid service name")
                } else if text == name {
                    error(field.at(item), "a service cannot depend on itself")
                } else if dependsOn.contains(text) {
                    error(field.at(item), "'\(text)' is listed twice")
                } else {
                    dependsOn.append(text)
                    dependsOnLocations.append(location(item))
                }
            }
        }

        var migrations: [String] = []
        var migrationLocations: [SourceLocation] = []
        if let field = f["migrations"] {
            (migrations, migrationLocations) = nameList(field, kind: "migration")
            // spec.migrations are what spec.version needs: an environment that runs another version must say
            // what that one needs, or a contract could run under a version that still reads what it drops.
            if version == nil && !migrations.isEmpty {
                error(
                    field,
                    "they belong to spec.version, which is not set; list each environment's in "
                        + "spec.environments.ENV.migrations")
            }
            for envName in order {
                guard let override = environments[envName], let other = override.version, override.migrations == nil,
                    let version, other != version, !migrations.isEmpty
                else { continue }
                diagnostics.append(
                    Diagnostic(
                        override.versionLocation ?? override.location,
                        "\(spec.owner)spec.environments.\(envName).version: \(other) is not spec.version (\(version)), "
                            + "which needs migrations \(migrations.joined(separator: ", ")); say which migrations "
                            + "\(other) needs with spec.environments.\(envName).migrations ([] for none)"))
            }
        }
        // One version needs the same migrations wherever it runs: a promotion that copies a version into an
        // environment with a list of its own (`migrations: []`) would otherwise let a rollback elsewhere undo
        // what it runs on.
        var needs: [String: (migrations: Set<String>, place: String)] = [:]
        if let version { needs[version] = (Set(migrations), "spec.migrations") }
        for envName in order {
            guard let override = environments[envName] else { continue }
            guard let runs = override.version ?? version else { continue }
            let list = Set(override.migrations ?? migrations)
            let place = override.migrations == nil ? "spec.migrations" : "spec.environments.\(envName).migrations"
            if let earlier = needs[runs], earlier.migrations != list {
                diagnostics.append(
                    Diagnostic(
                        override.migrationLocations.first ?? override.versionLocation ?? override.location,
                        "\(spec.owner)spec.environments.\(envName): \(runs) needs migrations "
                            + "[\(list.sorted().joined(separator: ", "))] here (\(place)) but "
                            + "[\(earlier.migrations.sorted().joined(separator: ", "))] by \(earlier.place); one version "
                            + "needs the same migrations everywhere it runs"))
            } else if needs[runs] == nil {
                needs[runs] = (list, place)
            }
        }
        var databases: [String] = []
        var databaseLocations: [SourceLocation] = []
        if let field = f["databases"] {
            (databases, databaseLocations) = nameList(field, kind: "executor")
        }

        var strategy = StrategySpec()
        var strategyLocation: SourceLocation?
        if let field = f["strategy"] {
            strategy = self.strategy(field, service: name) ?? strategy
            if case .mapping(let mapping) = field.node, let type = mapping["type"] { strategyLocation = location(type) }
        }

        let hotfix = f["hotfix"].flatMap { bool($0) } ?? false
        var rollback = RollbackSpec()
        if let field = f["rollback"], let g = fields(field, allowed: ["automatic", "writeBack"]) {
            if let value = g["automatic"].flatMap({ bool($0) }) { rollback.automatic = value }
            if let value = g["writeBack"].flatMap({ oneOf($0, RollbackSpec.WriteBack.self) }) {
                rollback.writeBack = value
            }
        }

        guard diagnostics.count == before else { return nil }
        var manifest = ServiceManifest(
            name: name, location: at, executor: executor, executorLocation: executorLocation, version: version,
            versionLocation: versionLocation, config: config, environments: environments, environmentOrder: order,
            dependsOn: dependsOn, dependsOnLocations: dependsOnLocations, strategy: strategy)
        manifest.hotfix = hotfix
        manifest.rollback = rollback
        manifest.resilience = settings
        manifest.migrations = migrations
        manifest.migrationLocations = migrationLocations
        manifest.databases = databases
        manifest.databaseLocations = databaseLocations
        manifest.strategyLocation = strategyLocation
        manifest.configLocations = configLocations
        manifest.resolveConfigs()
        return manifest
    }

    /// A config mapping (`spec.config`, `spec.environments.ENV.config`); null is none.
    private mutating func configMapping(_ field: Field) -> JSONValue? {
        guard let value = json(field) else { return nil }
        if case .object = value { return value }
        if value != .null { error(field, "expected a mapping, found \(describe(field.node))") }
        return nil
    }
}
