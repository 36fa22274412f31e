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
                ],
                required: ["executor", "environments"], owner: owner)
        else { return nil }
        let before = diagnostics.count

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
            strategy = self.strategy(node, service: name, owner: owner)
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
        manifest.migrations = migrations
        manifest.migrationLocations = migrationLocations
        manifest.databases = databases
        manifest.databaseLocations = databaseLocations
        manifest.strategyLocation = strategyLocation
        manifest.configLocations = configLocations
        manifest.resolveConfigs()
        return manifest
    }

    /// The fields each strategy takes besides `type`.
    static let strategyFields: [StrategySpec.StrategyType: [String]] = [
        .recreate: [],
        .rolling: ["batches", "maxSurge", "maxUnavailable"],
        .blueGreen: [
            "previewAnalysis", "postPromotionAnalysis", "autoPromotion", "autoPromotionAfter", "scaleDownDelay",
        ],
        .canary: ["steps", "backgroundAnalysis"],
        .shadow: ["mirror", "duration", "analysis"],
        .ab: ["match", "duration", "analysis"],
    ]

    mutating func strategy(_ node: Node, service: String, owner: String) -> StrategySpec {
        var strategy = StrategySpec()
        let all = ["type"] + Set(Self.strategyFields.values.joined()).sorted()
        guard let g = fields(node, "spec.strategy", allowed: all, required: ["type"], owner: owner),
            let typeNode = g["type"]?.value, let text = string(typeNode, "spec.strategy.type", owner: owner)
        else { return strategy }
        guard let type = StrategySpec.StrategyType(rawValue: text) else {
            let known = StrategySpec.StrategyType.allCases.map(\.rawValue)
            let hint = closest(text, in: known).map { "; did you mean '\($0)'?" } ?? ""
            error(
                typeNode,
                "\(owner)spec.strategy.type: unknown strategy '\(text)'\(hint) (one of \(known.joined(separator: ", ")))"
            )
            return strategy
        }
        strategy.type = type
        let allowed = Self.strategyFields[type] ?? []
        for (name, entry) in g where name != "type" && !allowed.contains(name) {
            let owners = Self.strategyFields.filter { $0.value.contains(name) }.keys.map(\.rawValue).sorted()
            error(
                entry.key,
                "\(owner)spec.strategy.\(name): a \(text) strategy has no '\(name)' (\(owners.joined(separator: ", ")) do)"
            )
        }
        func analysisName(_ field: String) -> String? {
            g[field].flatMap { self.name($0.value, "spec.strategy.\(field)", owner: owner) }
        }
        func seconds(_ field: String) -> Double? {
            g[field].flatMap { duration($0.value, "spec.strategy.\(field)", owner: owner) }
        }
        switch type {
        case .recreate:
            break
        case .canary:
            if let stepsNode = g["steps"]?.value {
                (strategy.steps, strategy.inlineAnalyses) = canarySteps(stepsNode, service: service, owner: owner)
            } else {
                error(node, "\(owner)spec.strategy: a canary needs steps (setWeight, pause, analysis)")
            }
            strategy.backgroundAnalysis = analysisName("backgroundAnalysis")
        case .rolling:
            strategy.batches = rollingBatches(g, node: node, owner: owner)
        case .blueGreen:
            strategy.previewAnalysis = analysisName("previewAnalysis")
            strategy.postPromotionAnalysis = analysisName("postPromotionAnalysis")
            if let entry = g["autoPromotion"],
                let value = bool(entry.value, "spec.strategy.autoPromotion", owner: owner)
            {
                strategy.autoPromotion = value
            }
            if let after = seconds("autoPromotionAfter") {
                strategy.autoPromotionAfter = after
                if !strategy.autoPromotion, let entry = g["autoPromotionAfter"] {
                    error(
                        entry.key, "\(owner)spec.strategy.autoPromotionAfter: has no effect with autoPromotion: false")
                }
            }
            if let delay = seconds("scaleDownDelay") { strategy.scaleDownDelay = delay }
        case .shadow, .ab:
            strategy.analysis = analysisName("analysis")
            if g["analysis"] == nil {
                error(node, "\(owner)spec.strategy: a \(text) strategy needs an analysis to decide promote or discard")
            }
            if let time = seconds("duration") { strategy.duration = time }
            if type == .shadow, let entry = g["mirror"] {
                if let percent = percent(entry.value, "spec.strategy.mirror", owner: owner, minimum: 1) {
                    strategy.mirror = percent
                }
            }
            if type == .ab {
                if let entry = g["match"] {
                    strategy.match = trafficMatch(entry.value, owner: owner)
                } else {
                    error(node, "\(owner)spec.strategy: an ab strategy needs a match (header, cookie or userKey)")
                }
                if g["duration"] == nil {
                    error(node, "\(owner)spec.strategy: an ab strategy needs a duration (how long to split)")
                }
            }
        }
        return strategy
    }

    /// `batches: [25%, 50%, 100%]`, or batches of `max(maxSurge, maxUnavailable)` (both default 25 %).
    mutating func rollingBatches(
        _ g: [String: (key: Node, value: Node)], node: Node, owner: String
    ) -> [Int] {
        if let entry = g["batches"] {
            if let other = g["maxSurge"] ?? g["maxUnavailable"] {
                error(other.key, "\(owner)spec.strategy: give either batches or maxSurge/maxUnavailable, not both")
            }
            guard case .sequence(let items) = entry.value, !items.isEmpty else {
                error(entry.value, "\(owner)spec.strategy.batches: expected a list of percentages ending at 100%")
                return [25, 50, 75, 100]
            }
            var batches: [Int] = []
            for (index, item) in items.enumerated() {
                guard
                    let value = percent(item, "spec.strategy.batches[\(index)]", owner: owner, minimum: 1)
                else { continue }
                if let last = batches.last, value <= last {
                    error(
                        item,
                        "\(owner)spec.strategy.batches[\(index)]: \(value)% is not above the batch before (\(last)%)")
                }
                batches.append(value)
            }
            if let last = batches.last, last != 100, let lastItem = items.last {
                error(lastItem, "\(owner)spec.strategy.batches: the last batch must be 100%, not \(last)%")
            }
            return batches
        }
        let surge = g["maxSurge"].flatMap { percent($0.value, "spec.strategy.maxSurge", owner: owner) } ?? 25
        let unavailable =
            g["maxUnavailable"].flatMap { percent($0.value, "spec.strategy.maxUnavailable", owner: owner) } ?? 25
        let step = max(surge, unavailable)
        guard step > 0 else {
            error(node, "\(owner)spec.strategy: maxSurge and maxUnavailable cannot both be 0%")
            return [100]
        }
        return Array(stride(from: step, to: 100, by: step)) + [100]
    }

    /// `match: {header: {name, value}}`, `{cookie: {name, value}}` or `{userKey: {header, percent}}`.
    mutating func trafficMatch(_ node: Node, owner: String) -> StrategySpec.Match? {
        let path = "spec.strategy.match"
        guard let g = fields(node, path, allowed: ["header", "cookie", "userKey"], owner: owner) else { return nil }
        guard g.count == 1, let (kind, entry) = g.first else {
            error(node, "\(owner)\(path): give exactly one of header, cookie or userKey")
            return nil
        }
        switch kind {
        case "header", "cookie":
            guard
                let h = fields(
                    entry.value, "\(path).\(kind)", allowed: ["name", "value"], required: ["name", "value"],
                    owner: owner),
                let name = h["name"].flatMap({ string($0.value, "\(path).\(kind).name", owner: owner) }),
                let value = h["value"].flatMap({ string($0.value, "\(path).\(kind).value", owner: owner) })
            else { return nil }
            return kind == "header" ? .header(name: name, value: value) : .cookie(name: name, value: value)
        default:
            guard
                let h = fields(
                    entry.value, "\(path).userKey", allowed: ["header", "percent"], required: ["header", "percent"],
                    owner: owner),
                let header = h["header"].flatMap({ string($0.value, "\(path).userKey.header", owner: owner) }),
                let share = h["percent"].flatMap({
                    percent($0.value, "\(path).userKey.percent", owner: owner, minimum: 1)
                })
            else { return nil }
            return .userKey(header: header, percent: share)
        }
    }

    /// The steps, and the analyses written inline in them (named `SERVICE/step-N`, which no Analysis document
    /// can be called).
    mutating func canarySteps(
        _ node: Node, service: String, owner: String
    ) -> ([StrategySpec.Step], [AnalysisManifest]) {
        guard case .sequence(let items) = node else {
            error(node, "\(owner)spec.strategy.steps: expected a list, found \(describe(node))")
            return ([], [])
        }
        var steps: [StrategySpec.Step] = []
        var inline: [AnalysisManifest] = []
        var lastWeight = 0
        for (index, item) in items.enumerated() {
            let path = "spec.strategy.steps[\(index)]"
            guard case .mapping(let mapping) = item, mapping.count == 1, let (key, value) = mapping.first,
                let name = key.string
            else {
                error(item, "\(owner)\(path): each step is one of setWeight: N, pause: DURATION or analysis: NAME")
                continue
            }
            switch name {
            case "setWeight":
                guard let text = string(value, "\(path).setWeight", owner: owner), let weight = Int(text),
                    (0...100).contains(weight)
                else {
                    if case .scalar = value {
                        error(value, "\(owner)\(path).setWeight: expected a whole number from 0 to 100")
                    }
                    continue
                }
                if weight < lastWeight {
                    error(value, "\(owner)\(path).setWeight: \(weight) is below the previous step's \(lastWeight)")
                }
                lastWeight = weight
                steps.append(.setWeight(weight))
            case "pause":
                if case .scalar = value, value.tagName == .null {
                    steps.append(.pause(nil))
                } else if case .mapping(let pause) = value {
                    if pause.count == 0 {
                        steps.append(.pause(nil))
                    } else if let f = fields(value, "\(path).pause", allowed: ["duration"], owner: owner),
                        let durationNode = f["duration"]?.value,
                        let seconds = duration(durationNode, "\(path).pause.duration", owner: owner)
                    {
                        steps.append(.pause(seconds))
                    }
                } else if let seconds = duration(value, "\(path).pause", owner: owner) {
                    steps.append(.pause(seconds))
                }
            case "analysis":
                if case .mapping = value {
                    let name = "\(service)/step-\(index + 1)"
                    if let analysis = analysis(
                        value, name: name, at: location(value), owner: owner, path: "\(path).analysis")
                    {
                        inline.append(analysis)
                        steps.append(.analysis(name))
                    }
                } else if let text = self.name(value, "\(path).analysis", owner: owner) {
                    steps.append(.analysis(text))
                }
            default:
                let hint =
                    closest(name, in: ["setWeight", "pause", "analysis"]).map { "; did you mean '\($0)'?" } ?? ""
                error(key, "\(owner)\(path): unknown step '\(name)'\(hint)")
            }
        }
        if items.isEmpty { error(node, "\(owner)spec.strategy.steps: list at least one step") }
        return (steps, inline)
    }
}
