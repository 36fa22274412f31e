import Foundation
internal import Yams

extension NodeReader {
    mutating func service(_ spec: Node, name: String, at: SourceLocation, owner: String) -> ServiceManifest? {
        guard
            let f = fields(
                spec, "spec",
                allowed: [
                    "executor", "version", "config", "environments", "dependsOn", "strategy", "hotfix", "rollback",
                    "migrations", "databases",
                ] + Resilience.serviceFields,
                required: ["executor", "environments"], owner: owner)
        else { return nil }
        let before = diagnostics.count
        let settings = resilience(f, owner: owner)

        var executor = ""
        var executorLocation = at
        if let node = f["executor"]?.value, let text = self.name(node, "spec.executor", owner: owner) {
            executor = text
            executorLocation = location(node)
        }
        var version: String?
        var versionLocation: SourceLocation?
        if let node = f["version"]?.value {
            version = self.version(node, "spec.version", owner: owner)
            versionLocation = location(node)
        }
        var config = JSONValue.object([:])
        var configLocations = ServiceManifest.ConfigLocations()
        if let node = f["config"]?.value, let value = json(node, "spec.config", owner: owner) {
            if case .object = value {
                config = value
                valueLocations(node, into: &configLocations.base)
            } else if value != .null {
                error(node, "\(owner)spec.config: expected a mapping, found \(describe(node))")
            }
        }

        var environments: [String: ServiceManifest.EnvironmentOverride] = [:]
        var order: [String] = []
        if let node = f["environments"]?.value {
            if case .mapping(let mapping) = node {
                if mapping.count == 0 { error(node, "\(owner)spec.environments: list at least one environment") }
                for (key, value) in mapping {
                    guard let envName = self.name(key, "spec.environments", owner: owner) else { continue }
                    let path = "spec.environments.\(envName)"
                    var override = ServiceManifest.EnvironmentOverride(location: location(key))
                    if case .scalar = value, value.tagName == .null {
                        // `prod:` with nothing after it: runs there with the defaults.
                    } else if let g = fields(value, path, allowed: ["version", "config", "migrations"], owner: owner) {
                        if let v = g["version"]?.value {
                            override.version = self.version(v, "\(path).version", owner: owner)
                            override.versionLocation = location(v)
                        }
                        if let c = g["config"]?.value, let value = json(c, "\(path).config", owner: owner) {
                            if case .object = value {
                                override.config = value
                                valueLocations(c, into: &configLocations.environments[envName, default: [:]])
                            } else if value != .null {
                                error(c, "\(owner)\(path).config: expected a mapping, found \(describe(c))")
                            }
                        }
                        if let m = g["migrations"]?.value {
                            let (names, places) = nameList(m, "\(path).migrations", kind: "migration", owner: owner)
                            override.migrations = names
                            override.migrationLocations = places
                        }
                    }
                    if override.version == nil && version == nil && f["version"] == nil {
                        error(
                            key,
                            "\(owner)\(path): no version for this environment; set spec.version or \(path).version")
                    }
                    environments[envName] = override
                    order.append(envName)
                }
            } else {
                error(
                    node, "\(owner)spec.environments: expected a mapping of environment names, found \(describe(node))")
            }
        }

        var dependsOn: [String] = []
        var dependsOnLocations: [SourceLocation] = []
        if let node = f["dependsOn"]?.value, let items = stringList(node, "spec.dependsOn", owner: owner) {
            for (text, item) in items {
                if !Naming.isValidName(text) {
                    error(item, "\(owner)spec.dependsOn: '\(text)' is not a valid service name")
                } else if text == name {
                    error(item, "\(owner)spec.dependsOn: a service cannot depend on itself")
                } else if dependsOn.contains(text) {
                    error(item, "\(owner)spec.dependsOn: '\(text)' is listed twice")
                } else {
                    dependsOn.append(text)
                    dependsOnLocations.append(location(item))
                }
            }
        }

        var migrations: [String] = []
        var migrationLocations: [SourceLocation] = []
        if let node = f["migrations"]?.value {
            (migrations, migrationLocations) = nameList(node, "spec.migrations", kind: "migration", owner: owner)
            // spec.migrations are what spec.version needs: an environment that runs another version must say
            // what that one needs, or a contract could run under a version that still reads what it drops.
            if version == nil && !migrations.isEmpty {
                error(
                    node,
                    "\(owner)spec.migrations: they belong to spec.version, which is not set; list each environment's "
                        + "in spec.environments.ENV.migrations")
            }
            for envName in order {
                guard let override = environments[envName], let other = override.version, override.migrations == nil,
                    let version, other != version, !migrations.isEmpty
                else { continue }
                diagnostics.append(
                    Diagnostic(
                        override.versionLocation ?? override.location,
                        "\(owner)spec.environments.\(envName).version: \(other) is not spec.version (\(version)), which "
                            + "needs migrations \(migrations.joined(separator: ", ")); say which migrations \(other) needs "
                            + "with spec.environments.\(envName).migrations ([] for none)"))
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
                        "\(owner)spec.environments.\(envName): \(runs) needs migrations [\(list.sorted().joined(separator: ", "))] "
                            + "here (\(place)) but [\(earlier.migrations.sorted().joined(separator: ", "))] by "
                            + "\(earlier.place); one version needs the same migrations everywhere it runs"))
            } else if needs[runs] == nil {
                needs[runs] = (list, place)
            }
        }
        var databases: [String] = []
        var databaseLocations: [SourceLocation] = []
        if let node = f["databases"]?.value {
            (databases, databaseLocations) = nameList(node, "spec.databases", kind: "executor", owner: owner)
        }

        var strategy = StrategySpec()
        var strategyLocation: SourceLocation?
        if let node = f["strategy"]?.value {
            strategy = self.strategy(Field(node: node, path: "spec.strategy", owner: owner), service: name) ?? strategy
            if case .mapping(let mapping) = node, let type = mapping["type"] { strategyLocation = location(type) }
        }

        var hotfix = false
        if let node = f["hotfix"]?.value, let value = bool(node, "spec.hotfix", owner: owner) { hotfix = value }
        var rollback = RollbackSpec()
        if let node = f["rollback"]?.value,
            let g = fields(node, "spec.rollback", allowed: ["automatic", "writeBack"], owner: owner)
        {
            if let automatic = g["automatic"]?.value,
                let value = bool(automatic, "spec.rollback.automatic", owner: owner)
            {
                rollback.automatic = value
            }
            if let writeBack = g["writeBack"]?.value,
                let text = string(writeBack, "spec.rollback.writeBack", owner: owner)
            {
                if let value = RollbackSpec.WriteBack(rawValue: text) {
                    rollback.writeBack = value
                } else {
                    error(writeBack, "\(owner)spec.rollback.writeBack: '\(text)' is not one of none, revert")
                }
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
}
