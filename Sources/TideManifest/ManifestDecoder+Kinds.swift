import Foundation
internal import Yams

extension NodeReader {
    /// One top-level document: the envelope (`apiVersion`, `kind`, `metadata`, `spec`) and its kind's spec.
    mutating func document(_ root: Node) -> ManifestDocument? {
        guard
            let top = fields(
                root, "", allowed: ["apiVersion", "kind", "metadata", "spec"],
                required: ["apiVersion", "kind", "metadata", "spec"], owner: "document")
        else { return nil }
        if let node = top["apiVersion"]?.value, let version = string(node, ".apiVersion", owner: "document"),
            version != ManifestDecoder.apiVersion
        {
            error(node, "apiVersion: '\(version)' is not supported; expected '\(ManifestDecoder.apiVersion)'")
        }
        guard let kindNode = top["kind"]?.value, let kindText = string(kindNode, ".kind", owner: "document") else {
            return nil
        }
        guard let kind = ManifestKind(rawValue: kindText) else {
            let known = ManifestKind.allCases.map(\.rawValue)
            let planned: [String] = []
            if planned.contains(kindText) {
                error(kindNode, "kind: '\(kindText)' is not supported by this version of tide yet")
            } else {
                let hint = closest(kindText, in: known).map { "; did you mean '\($0)'?" } ?? ""
                error(
                    kindNode,
                    "kind: unknown kind '\(kindText)'\(hint); expected one of \(known.joined(separator: ", "))")
            }
            return nil
        }
        guard let metadataNode = top["metadata"]?.value,
            let metadata = fields(
                metadataNode, ".metadata", allowed: ["name", "labels", "annotations"], required: ["name"],
                owner: kind.rawValue),
            let nameNode = metadata["name"]?.value,
            let name = self.name(nameNode, ".metadata.name", owner: kind.rawValue)
        else { return nil }
        for extra in ["labels", "annotations"] {
            if let node = metadata[extra]?.value { _ = stringMap(node, ".metadata.\(extra)", owner: kind.rawValue) }
        }
        guard let specNode = top["spec"]?.value else { return nil }
        let owner = "\(kind.rawValue) '\(name)': "
        let at = location(nameNode)
        let document: ManifestDocument?
        switch kind {
        case .executor: document = executor(specNode, name: name, at: at, owner: owner).map(ManifestDocument.executor)
        case .environment:
            document = environment(specNode, name: name, at: at, owner: owner).map(ManifestDocument.environment)
        case .service: document = service(specNode, name: name, at: at, owner: owner).map(ManifestDocument.service)
        case .policy: document = policy(specNode, name: name, at: at, owner: owner).map(ManifestDocument.policy)
        case .analysis: document = analysis(specNode, name: name, at: at, owner: owner).map(ManifestDocument.analysis)
        case .migration:
            document = migration(specNode, name: name, at: at, owner: owner).map(ManifestDocument.migration)
        }
        if document == nil { brokenNames.insert("\(kind.rawValue)/\(name)") }
        return document
    }

    mutating func stringMap(_ node: Node, _ path: String, owner: String) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            error(node, "\(owner)\(path): expected a mapping, found \(describe(node))")
            return nil
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = string(key, path, owner: owner), let text = string(value, "\(path).\(name)", owner: owner)
            else { continue }
            result[name] = text
        }
        return result
    }

    mutating func executor(_ spec: Node, name: String, at: SourceLocation, owner: String) -> ExecutorManifest? {
        guard
            let f = fields(
                spec, "spec",
                allowed: [
                    "type", "command", "timeout", "env", "path", "configDir", "test", "reload", "url", "environments",
                    "password",
                ],
                required: ["type"],
                owner: owner)
        else { return nil }
        var valid = true
        var type = ExecutorManifest.ExecutorType.command
        if let node = f["type"]?.value, let text = string(node, "spec.type", owner: owner) {
            if let known = ExecutorManifest.ExecutorType(rawValue: text) {
                type = known
            } else if ["http"].contains(text) {
                error(node, "\(owner)spec.type: executor type '\(text)' is not supported by this version of tide yet")
                valid = false
            } else {
                error(
                    node,
                    "\(owner)spec.type: unknown executor type '\(text)'; expected command, plugin, flags, nginx or sql"
                )
                valid = false
            }
        } else {
            valid = false
        }
        var command: [String] = []
        if let node = f["command"]?.value {
            if let items = stringList(node, "spec.command", owner: owner) {
                command = items.map(\.0)
                if command.isEmpty || command[0].isEmpty {
                    error(node, "\(owner)spec.command: must name a program to run")
                    valid = false
                }
            } else {
                valid = false
            }
        } else if type == .command || type == .plugin {
            error(spec, "\(owner)spec: missing required field 'command' for a \(type.rawValue) executor")
            valid = false
        }
        if type != .command && type != .plugin, let node = f["command"]?.key {
            error(node, "\(owner)spec.command: only a command or plugin executor runs a command")
            valid = false
        }
        var path: String?
        if let node = f["path"]?.value {
            if type != .flags {
                error(f["path"]!.key, "\(owner)spec.path: only a flags executor writes a file")
                valid = false
            } else if let text = string(node, "spec.path", owner: owner), !text.isEmpty {
                path = text
            } else {
                valid = false
            }
        } else if type == .flags {
            error(spec, "\(owner)spec: missing required field 'path' (the JSON file the flags executor publishes)")
            valid = false
        }
        var nginxCommands: [String: [String]] = [:]
        for field in ["configDir", "test", "reload"] {
            guard let entry = f[field] else { continue }
            if type != .nginx {
                error(entry.key, "\(owner)spec.\(field): only an nginx executor has '\(field)'")
                valid = false
            } else if field == "configDir" {
                if let text = string(entry.value, "spec.configDir", owner: owner), !text.isEmpty {
                    path = text
                } else {
                    valid = false
                }
            } else if let argv = stringList(entry.value, "spec.\(field)", owner: owner), !argv.isEmpty {
                nginxCommands[field] = argv.map(\.0)
            } else {
                error(entry.value, "\(owner)spec.\(field): expected a command (a list: program and arguments)")
                valid = false
            }
        }
        if type == .nginx && f["configDir"] == nil {
            error(spec, "\(owner)spec: missing required field 'configDir' (where tide writes nginx include files)")
            valid = false
        }
        var timeout = 300.0
        if let node = f["timeout"]?.value {
            if let seconds = duration(node, "spec.timeout", owner: owner), seconds > 0 {
                timeout = seconds
            } else {
                if case .scalar = node, ManifestDuration.seconds(node.string ?? "") == 0 {
                    error(node, "\(owner)spec.timeout: must be longer than 0s")
                }
                valid = false
            }
        }
        var env: [String: String] = [:]
        if let node = f["env"]?.value {
            if let map = stringMap(node, "spec.env", owner: owner) {
                for key in map.keys where key.hasPrefix("TIDE_") {
                    error(node, "\(owner)spec.env.\(key): TIDE_* variables are set by tide itself")
                    valid = false
                }
                env = map
            } else {
                valid = false
            }
        }
        var database: DatabaseSpec?
        for field in ["url", "environments", "password"] where type != .sql {
            if let entry = f[field] {
                error(entry.key, "\(owner)spec.\(field): only a sql executor has '\(field)'")
                valid = false
            }
        }
        if type == .sql {
            func databaseURL(_ node: Node, _ path: String) -> DatabaseURL? {
                guard let text = string(node, path, owner: owner) else { return nil }
                do {
                    return try DatabaseURL(parsing: text)
                } catch {
                    self.error(node, "\(owner)\(path): \(error)")
                    return nil
                }
            }
            var db = DatabaseSpec(url: nil)
            if let node = f["url"]?.value {
                db.url = databaseURL(node, "spec.url")
                if db.url == nil { valid = false }
            }
            if let node = f["environments"]?.value {
                if case .mapping(let entries) = node {
                    for (key, value) in entries {
                        guard let environment = string(key, "spec.environments", owner: owner) else { continue }
                        let path = "spec.environments.\(environment)"
                        guard let g = fields(value, path, allowed: ["url"], required: ["url"], owner: owner),
                            let urlNode = g["url"]?.value, let url = databaseURL(urlNode, "\(path).url")
                        else {
                            valid = false
                            continue
                        }
                        db.environmentURLs[environment] = url
                    }
                } else {
                    error(node, "\(owner)spec.environments: expected a mapping of environment: {url: …}")
                    valid = false
                }
            }
            if f["url"] == nil && f["environments"] == nil {
                error(spec, "\(owner)spec: a sql executor needs url (or environments.NAME.url)")
                valid = false
            }
            if let node = f["password"]?.value {
                if let g = fields(node, "spec.password", allowed: ["env", "file"], owner: owner) {
                    if let e = g["env"]?.value, let name = string(e, "spec.password.env", owner: owner) {
                        db.password = .environment(name)
                        // The variable is Tide's secret from now on: no process Tide starts inherits it.
                        SecretVariables.withhold(name)
                    } else if let p = g["file"]?.value, let path = string(p, "spec.password.file", owner: owner) {
                        db.password = .file(path)
                    } else {
                        error(node, "\(owner)spec.password: give env: VARIABLE or file: PATH (never the password)")
                        valid = false
                    }
                } else {
                    valid = false
                }
            }
            database = db
        }
        guard valid else { return nil }
        var manifest = ExecutorManifest(
            name: name, location: at, type: type, command: command, timeout: timeout, environment: env)
        manifest.database = database
        manifest.path = path
        if let test = nginxCommands["test"] { manifest.nginxTest = test }
        if let reload = nginxCommands["reload"] { manifest.nginxReload = reload }
        return manifest
    }

    mutating func environment(_ spec: Node, name: String, at: SourceLocation, owner: String) -> EnvironmentManifest? {
        var environment = EnvironmentManifest(name: name, location: at)
        if case .scalar = spec, spec.tagName == .null { return environment }
        guard
            let f = fields(
                spec, "spec",
                allowed: ["production", "requires", "bake", "approval", "promotion", "windows", "freezes"],
                owner: owner)
        else { return nil }
        let before = diagnostics.count
        if let node = f["production"]?.value, let value = bool(node, "spec.production", owner: owner) {
            environment.production = value
        }
        if let node = f["requires"]?.value, let items = stringList(node, "spec.requires", owner: owner) {
            for (text, item) in items {
                if !Naming.isValidName(text) {
                    error(item, "\(owner)spec.requires: '\(text)' is not a valid environment name")
                } else if text == name {
                    error(item, "\(owner)spec.requires: an environment cannot require itself")
                } else if environment.requires.contains(text) {
                    error(item, "\(owner)spec.requires: '\(text)' is listed twice")
                } else {
                    environment.requires.append(text)
                    environment.requiresLocations.append(location(item))
                }
            }
        }
        if let node = f["bake"]?.value, let seconds = duration(node, "spec.bake", owner: owner) {
            environment.bake = seconds
        }
        for (field, keyPath) in [("approval", \EnvironmentManifest.approval), ("promotion", \.promotion)] {
            guard let node = f[field]?.value, let text = string(node, "spec.\(field)", owner: owner) else { continue }
            if let mode = EnvironmentManifest.Mode(rawValue: text) {
                environment[keyPath: keyPath] = mode
            } else {
                error(node, "\(owner)spec.\(field): '\(text)' is not one of manual, auto")
            }
        }
        if let node = f["windows"]?.value {
            if case .sequence(let items) = node {
                for (index, item) in items.enumerated() {
                    if let window = window(item, "spec.windows[\(index)]", owner: owner) {
                        environment.windows.append(window)
                    }
                }
            } else {
                error(node, "\(owner)spec.windows: expected a list, found \(describe(node))")
            }
        }
        if let node = f["freezes"]?.value {
            if case .sequence(let items) = node {
                for (index, item) in items.enumerated() {
                    if let freeze = freeze(item, "spec.freezes[\(index)]", owner: owner) {
                        environment.freezes.append(freeze)
                    }
                }
            } else {
                error(node, "\(owner)spec.freezes: expected a list, found \(describe(node))")
            }
        }
        return diagnostics.count == before ? environment : nil
    }

    mutating func policy(_ spec: Node, name: String, at: SourceLocation, owner: String) -> PolicyManifest? {
        guard let f = fields(spec, "spec", allowed: ["rules"], required: ["rules"], owner: owner),
            let rulesNode = f["rules"]?.value
        else { return nil }
        guard case .sequence(let items) = rulesNode else {
            error(rulesNode, "\(owner)spec.rules: expected a list, found \(describe(rulesNode))")
            return nil
        }
        let before = diagnostics.count
        var rules: [PolicyManifest.Rule] = []
        for (index, item) in items.enumerated() {
            let path = "spec.rules[\(index)]"
            guard let g = fields(item, path, allowed: ["match", "require"], required: ["require"], owner: owner)
            else { continue }
            var rule = PolicyManifest.Rule(location: location(item))
            if let match = g["match"]?.value,
                let m = fields(
                    match, "\(path).match", allowed: ["environments", "classes", "risks", "production"], owner: owner)
            {
                if let node = m["environments"]?.value {
                    rule.environments = stringList(node, "\(path).match.environments", owner: owner)?.map(\.0) ?? []
                }
                for (field, known) in [
                    ("classes", ["FEATURE", "CONFIG", "HOTFIX", "ROLLBACK", "REMOVAL"]),
                    ("risks", ["LOW", "MEDIUM", "HIGH"]),
                ] {
                    guard let node = m[field]?.value,
                        let values = stringList(node, "\(path).match.\(field)", owner: owner)
                    else { continue }
                    for (value, valueNode) in values where !known.contains(value) {
                        error(
                            valueNode,
                            "\(owner)\(path).match.\(field): '\(value)' is not one of \(known.joined(separator: ", "))")
                    }
                    if field == "classes" { rule.classes = values.map(\.0) } else { rule.risks = values.map(\.0) }
                }
                if let node = m["production"]?.value {
                    rule.production = bool(node, "\(path).match.production", owner: owner)
                }
            }
            if let requireNode = g["require"]?.value,
                let r = fields(
                    requireNode, "\(path).require", allowed: ["approval", "analysis", "minimumStrategy", "windows"],
                    owner: owner)
            {
                if let node = r["approval"]?.value {
                    rule.requireApproval = bool(node, "\(path).require.approval", owner: owner) ?? false
                }
                if let node = r["analysis"]?.value {
                    rule.requireAnalysis = bool(node, "\(path).require.analysis", owner: owner) ?? false
                }
                if let node = r["minimumStrategy"]?.value,
                    let strategy = string(node, "\(path).require.minimumStrategy", owner: owner)
                {
                    if PolicyManifest.strategyOrder.contains(strategy) {
                        rule.minimumStrategy = strategy
                    } else {
                        error(
                            node,
                            "\(owner)\(path).require.minimumStrategy: '\(strategy)' is not one of "
                                + PolicyManifest.strategyOrder.joined(separator: ", "))
                    }
                }
                if let node = r["windows"]?.value {
                    if case .sequence(let windows) = node {
                        for (w, windowNode) in windows.enumerated() {
                            if let window = window(windowNode, "\(path).require.windows[\(w)]", owner: owner) {
                                rule.windows.append(window)
                            }
                        }
                    } else {
                        error(node, "\(owner)\(path).require.windows: expected a list, found \(describe(node))")
                    }
                }
            }
            rules.append(rule)
        }
        return diagnostics.count == before ? PolicyManifest(name: name, location: at, rules: rules) : nil
    }

    mutating func analysis(
        _ spec: Node, name: String, at: SourceLocation, owner: String, path: String = "spec"
    ) -> AnalysisManifest? {
        guard
            let f = fields(
                spec, path,
                allowed: [
                    "interval", "count", "initialDelay", "failureLimit", "inconclusiveLimit", "consecutiveErrorLimit",
                    "metrics", "judge",
                ], required: ["metrics"], owner: owner)
        else { return nil }
        let before = diagnostics.count
        var analysis = AnalysisManifest(name: name, location: at)
        if let node = f["interval"]?.value, let seconds = duration(node, "\(path).interval", owner: owner) {
            analysis.interval = seconds
        }
        if let node = f["initialDelay"]?.value, let seconds = duration(node, "\(path).initialDelay", owner: owner) {
            analysis.initialDelay = seconds
        }
        for (field, keyPath, minimum) in [
            ("count", \AnalysisManifest.count, 1), ("failureLimit", \.failureLimit, 0),
            ("inconclusiveLimit", \.inconclusiveLimit, 0), ("consecutiveErrorLimit", \.consecutiveErrorLimit, 0),
        ] {
            guard let node = f[field]?.value else { continue }
            if let text = string(node, "\(path).\(field)", owner: owner), let value = Int(text), value >= minimum {
                analysis[keyPath: keyPath] = value
            } else if case .scalar = node {
                error(node, "\(owner)\(path).\(field): expected a whole number of at least \(minimum)")
            }
        }
        if let node = f["judge"]?.value,
            let j = fields(node, "\(path).judge", allowed: ["confidence", "pass", "marginal"], owner: owner)
        {
            var judge = AnalysisManifest.Judge()
            if let c = j["confidence"]?.value,
                let value = number(c, "\(path).judge.confidence", owner: owner, in: 0.5...0.9999)
            {
                judge.confidence = value
            }
            if let p = j["pass"]?.value, let value = number(p, "\(path).judge.pass", owner: owner, in: 0...100) {
                judge.pass = value
            }
            if let m = j["marginal"]?.value, let value = number(m, "\(path).judge.marginal", owner: owner, in: 0...100)
            {
                judge.marginal = value
                if value > judge.pass {
                    error(m, "\(owner)\(path).judge.marginal: \(value) is above pass (\(judge.pass)); marginal ≤ pass")
                }
            }
            analysis.judge = judge
        }
        if let node = f["metrics"]?.value {
            if case .sequence(let items) = node, !items.isEmpty {
                for (index, item) in items.enumerated() {
                    if let metric = metric(
                        item, "\(path).metrics[\(index)]", judged: analysis.judge != nil, owner: owner)
                    {
                        analysis.metrics.append(metric)
                    }
                }
            } else {
                error(node, "\(owner)\(path).metrics: expected a list of at least one metric")
            }
        }
        return diagnostics.count == before ? analysis : nil
    }

    mutating func number(_ node: Node, _ path: String, owner: String, in range: ClosedRange<Double>) -> Double? {
        guard let text = string(node, path, owner: owner) else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            error(node, "\(owner)\(path): expected a number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func metric(_ node: Node, _ path: String, judged: Bool, owner: String) -> AnalysisManifest.Metric? {
        let judgeFields = ["baseline", "select", "direction", "critical", "weight", "tolerance"]
        guard
            let f = fields(
                node, path, allowed: ["name", "provider", "successCondition", "failureCondition"] + judgeFields,
                required: ["name", "provider"] + (judged ? ["baseline"] : []), owner: owner),
            let nameNode = f["name"]?.value, let name = string(nameNode, "\(path).name", owner: owner),
            let providerNode = f["provider"]?.value
        else { return nil }
        let provider = self.provider(providerNode, "\(path).provider", owner: owner)
        func condition(_ field: String) -> Condition? {
            guard let node = f[field]?.value, let text = string(node, "\(path).\(field)", owner: owner) else {
                return nil
            }
            do {
                return try Condition(text)
            } catch {
                self.error(node, "\(owner)\(path).\(field): \(error)")
                return nil
            }
        }
        let success = condition("successCondition")
        let failure = condition("failureCondition")
        if judged {
            for field in ["successCondition", "failureCondition"] {
                if let entry = f[field] {
                    error(
                        entry.key,
                        "\(owner)\(path).\(field): a judged analysis classifies metrics by the judge; remove it")
                }
            }
        } else {
            if f["successCondition"] == nil && f["failureCondition"] == nil {
                error(node, "\(owner)\(path): give a successCondition, a failureCondition, or both")
            }
            for field in judgeFields {
                if let entry = f[field] {
                    error(entry.key, "\(owner)\(path).\(field): only for an analysis with a judge (spec.judge)")
                }
            }
        }
        guard let provider else { return nil }
        var metric = AnalysisManifest.Metric(
            name: name, provider: provider, successCondition: success, failureCondition: failure,
            location: location(node))
        if judged {
            if let b = f["baseline"]?.value { metric.baseline = self.provider(b, "\(path).baseline", owner: owner) }
            metric.select = condition("select")
            if let d = f["direction"]?.value, let text = string(d, "\(path).direction", owner: owner) {
                if let direction = AnalysisManifest.Direction(rawValue: text) {
                    metric.direction = direction
                } else {
                    error(d, "\(owner)\(path).direction: '\(text)' is not increase, decrease or either")
                }
            }
            if let c = f["critical"]?.value { metric.critical = bool(c, "\(path).critical", owner: owner) ?? false }
            if let w = f["weight"]?.value {
                metric.weight = number(w, "\(path).weight", owner: owner, in: 0...1e6) ?? 1
            }
            if let t = f["tolerance"]?.value {
                metric.tolerance = number(t, "\(path).tolerance", owner: owner, in: 0...100) ?? 0
            }
        }
        return metric
    }

    /// `provider:` (and a judged metric's `baseline:`): exactly one of command, prometheus, http or probe.
    mutating func provider(_ providerNode: Node, _ path: String, owner: String) -> AnalysisManifest.Provider? {
        guard
            let p = fields(providerNode, path, allowed: ["command", "prometheus", "http", "probe"], owner: owner)
        else { return nil }
        var provider: AnalysisManifest.Provider?
        if let command = p["command"]?.value,
            let c = fields(
                command, "\(path).command", allowed: ["command", "timeout"], required: ["command"], owner: owner),
            let argvNode = c["command"]?.value,
            let argv = stringList(argvNode, "\(path).command.command", owner: owner)
        {
            var timeout = 30.0
            if let t = c["timeout"]?.value, let seconds = duration(t, "\(path).command.timeout", owner: owner) {
                timeout = seconds
            }
            if argv.isEmpty { error(argvNode, "\(owner)\(path).command.command: must name a program") }
            provider = .command(argv.map(\.0), timeout: timeout)
        }
        func timeout(_ g: [String: (key: Node, value: Node)], _ where_: String, default value: Double) -> Double {
            g["timeout"].flatMap { duration($0.value, "\(where_).timeout", owner: owner) } ?? value
        }
        func url(_ g: [String: (key: Node, value: Node)], _ field: String, _ where_: String) -> String? {
            guard let node = g[field]?.value, let text = string(node, "\(where_).\(field)", owner: owner) else {
                return nil
            }
            guard let parsed = URLComponents(string: text), ["http", "https"].contains(parsed.scheme ?? ""),
                parsed.host?.isEmpty == false
            else {
                error(node, "\(owner)\(where_).\(field): '\(text)' is not an http:// or https:// URL")
                return nil
            }
            return text
        }
        func headers(_ g: [String: (key: Node, value: Node)], _ where_: String) -> [String: String] {
            g["headers"].flatMap { stringMap($0.value, "\(where_).headers", owner: owner) } ?? [:]
        }
        if let node = p["prometheus"]?.value {
            let where_ = "\(path).prometheus"
            if let g = fields(
                node, where_, allowed: ["address", "query", "timeout"], required: ["address", "query"], owner: owner),
                let address = url(g, "address", where_),
                let query = g["query"].flatMap({ string($0.value, "\(where_).query", owner: owner) })
            {
                provider = .prometheus(address: address, query: query, timeout: timeout(g, where_, default: 30))
            }
        }
        if let node = p["http"]?.value {
            let where_ = "\(path).http"
            if let g = fields(node, where_, allowed: ["url", "headers", "timeout"], required: ["url"], owner: owner),
                let address = url(g, "url", where_)
            {
                provider = .http(url: address, headers: headers(g, where_), timeout: timeout(g, where_, default: 30))
            }
        }
        if let node = p["probe"]?.value {
            let where_ = "\(path).probe"
            if let g = fields(
                node, where_, allowed: ["url", "requests", "concurrency", "timeout", "headers"], required: ["url"],
                owner: owner),
                let address = url(g, "url", where_)
            {
                func count(_ field: String, _ value: Int, _ limit: Int) -> Int {
                    guard let entry = g[field] else { return value }
                    guard let text = string(entry.value, "\(where_).\(field)", owner: owner), let n = Int(text),
                        (1...limit).contains(n)
                    else {
                        error(entry.value, "\(owner)\(where_).\(field): expected a whole number from 1 to \(limit)")
                        return value
                    }
                    return n
                }
                provider = .probe(
                    url: address, requests: count("requests", 50, 100_000), concurrency: count("concurrency", 4, 256),
                    timeout: timeout(g, where_, default: 5), headers: headers(g, where_))
            }
        }
        if p.count > 1 {
            error(providerNode, "\(owner)\(path): name one provider, not \(p.count)")
        }
        if p.isEmpty {
            error(providerNode, "\(owner)\(path): name one provider (command, prometheus, http or probe)")
        }
        return provider
    }

    mutating func migration(_ spec: Node, name: String, at: SourceLocation, owner: String) -> MigrationManifest? {
        guard
            let f = fields(
                spec, "spec", allowed: ["executor", "expand", "backfill", "contract"], required: ["executor"],
                owner: owner),
            let executorNode = f["executor"]?.value,
            let executor = self.name(executorNode, "spec.executor", owner: owner)
        else { return nil }
        let before = diagnostics.count
        var migration = MigrationManifest(
            name: name, location: at, executor: executor, executorLocation: location(executorNode))
        func statements(_ node: Node, _ path: String, required: Bool, batched: Bool = false) -> [String] {
            guard let items = stringList(node, path, owner: owner) else { return [] }
            for (index, (text, item)) in items.enumerated() {
                if text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    error(item, "\(owner)\(path): an empty statement")
                } else if !batched && text.contains("{{batch}}") {
                    // Only a batched backfill replaces it; anywhere else the database would get it verbatim.
                    error(
                        item,
                        "\(owner)\(path)[\(index)]: {{batch}} is replaced only in a backfill with batchSize "
                            + "(spec.backfill.batchSize); the database would be sent it as written")
                }
            }
            if required && items.isEmpty { error(node, "\(owner)\(path): list at least one statement") }
            return items.map(\.0)
        }
        let allowed: [MigrationManifest.PhaseName: [String]] = [
            .expand: ["up", "down", "transaction"], .backfill: ["up", "batchSize", "maxRounds", "transaction"],
            .contract: ["up", "after", "transaction"],
        ]
        for phaseName in MigrationManifest.PhaseName.allCases {
            guard let node = f[phaseName.rawValue]?.value else { continue }
            let path = "spec.\(phaseName.rawValue)"
            guard let g = fields(node, path, allowed: allowed[phaseName]!, required: ["up"], owner: owner),
                let up = g["up"]?.value
            else { continue }
            let batched = phaseName == .backfill && g["batchSize"] != nil
            var phase = MigrationManifest.Phase(
                up: statements(up, "\(path).up", required: true, batched: batched), location: location(node))
            if let down = g["down"]?.value { phase.down = statements(down, "\(path).down", required: false) }
            if let batch = g["batchSize"]?.value {
                if let text = string(batch, "\(path).batchSize", owner: owner), let size = Int(text), size > 0 {
                    phase.batchSize = size
                    if !phase.up.contains(where: { $0.contains("{{batch}}") }) {
                        error(
                            batch,
                            "\(owner)\(path).batchSize: a batched backfill needs {{batch}} in a statement "
                                + "(… LIMIT {{batch}}): each round changes at most that many rows")
                    } else if !phase.up.contains(where: {
                        MigrationManifest.topLevelCommand($0).map(Self.modifying.contains) == true
                    }) {
                        // Rounds end when a round's INSERT/UPDATE/DELETE/MERGE statements change no row: rows changed
                        // inside a SELECT (a data-modifying WITH, a function) are not counted, so such a backfill would
                        // stop after its first round — and a contract would then drop what it had not copied yet.
                        error(
                            batch,
                            "\(owner)\(path).batchSize: a batched backfill ends when a round's INSERT, UPDATE, DELETE "
                                + "or MERGE statements change no row, and none of these statements is one at the top "
                                + "level (rows changed inside a SELECT — WITH … AS (UPDATE …) SELECT, a function — are "
                                + "not counted); write the UPDATE itself")
                    }
                } else {
                    error(batch, "\(owner)\(path).batchSize: expected a whole number above 0")
                }
            }
            if let after = g["after"]?.value, let seconds = duration(after, "\(path).after", owner: owner) {
                phase.after = seconds
            }
            if let rounds = g["maxRounds"]?.value {
                if let text = string(rounds, "\(path).maxRounds", owner: owner), let count = Int(text), count > 0 {
                    phase.maxRounds = count
                    if g["batchSize"] == nil {
                        error(rounds, "\(owner)\(path).maxRounds: only a batched backfill (batchSize) runs in rounds")
                    }
                } else {
                    error(rounds, "\(owner)\(path).maxRounds: expected a whole number above 0")
                }
            }
            if let node = g["transaction"]?.value, let value = bool(node, "\(path).transaction", owner: owner) {
                phase.transaction = value
                if !value && g["batchSize"] != nil {
                    error(
                        node,
                        "\(owner)\(path).transaction: a batched backfill commits each round in a transaction of "
                            + "its own; transaction: false is for statements that cannot run in one")
                }
            }
            if phase.transaction {
                let lists = [("up", phase.up), ("down", phase.down)]
                for (field, list) in lists {
                    for (index, statement) in list.enumerated() where MigrationManifest.needsNoTransaction(statement) {
                        error(
                            g[field]?.value ?? node,
                            "\(owner)\(path).\(field)[\(index)]: the database refuses this statement inside a "
                                + "transaction; set \(path).transaction: false (and make the phase's statements "
                                + "idempotent: CREATE INDEX CONCURRENTLY IF NOT EXISTS …)")
                    }
                }
            }
            switch phaseName {
            case .expand: migration.expand = phase
            case .backfill: migration.backfill = phase
            case .contract: migration.contract = phase
            }
        }
        if f["expand"] == nil && f["backfill"] == nil && f["contract"] == nil {
            error(spec, "\(owner)spec: give at least one phase: expand, backfill or contract")
        }
        return diagnostics.count == before ? migration : nil
    }

    static let weekdays = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    mutating func timeZone(_ node: Node?, _ path: String, owner: String) -> TimeZone? {
        guard let node else { return TimeZone(identifier: "UTC") }
        guard let text = string(node, path, owner: owner) else { return nil }
        guard let zone = TimeZone(identifier: text) else {
            error(node, "\(owner)\(path): '\(text)' is not an IANA time zone (like Europe/Berlin or UTC)")
            return nil
        }
        return zone
    }

    mutating func window(_ node: Node, _ path: String, owner: String) -> EnvironmentManifest.Window? {
        guard
            let f = fields(
                node, path, allowed: ["days", "start", "end", "timezone"], required: ["days", "start", "end"],
                owner: owner)
        else { return nil }
        let before = diagnostics.count
        var weekdays: Set<Int> = []
        if let days = f["days"]?.value, let items = stringList(days, "\(path).days", owner: owner) {
            for (text, item) in items {
                if let day = Self.weekdays[text.lowercased()] {
                    weekdays.insert(day)
                } else {
                    error(item, "\(owner)\(path).days: '\(text)' is not a day (mon, tue, wed, thu, fri, sat, sun)")
                }
            }
            if items.isEmpty { error(days, "\(owner)\(path).days: list at least one day") }
        }
        let start = f["start"].flatMap { clock($0.value, "\(path).start", owner: owner) }
        let end = f["end"].flatMap { clock($0.value, "\(path).end", owner: owner) }
        let zone = timeZone(f["timezone"]?.value, "\(path).timezone", owner: owner)
        guard diagnostics.count == before, let start, let end, let zone else { return nil }
        if start == end { error(node, "\(owner)\(path): start and end are the same time; the window would be empty") }
        return EnvironmentManifest.Window(
            weekdays: weekdays, start: start, end: end, timeZone: zone, location: location(node))
    }

    /// "HH:MM" as minutes after midnight ("24:00" is the end of the day).
    mutating func clock(_ node: Node, _ path: String, owner: String) -> Int? {
        guard let text = string(node, path, owner: owner) else { return nil }
        let parts = text.split(separator: ":")
        if parts.count == 2, parts[0].count == 2, parts[1].count == 2, let hours = Int(parts[0]),
            let minutes = Int(parts[1]), (0...59).contains(minutes),
            (0...23).contains(hours) || (hours == 24 && minutes == 0)
        {
            return hours * 60 + minutes
        }
        error(node, "\(owner)\(path): '\(text)' is not a time of day (write it as HH:MM, like 09:00)")
        return nil
    }

    mutating func freeze(_ node: Node, _ path: String, owner: String) -> EnvironmentManifest.Freeze? {
        guard
            let f = fields(
                node, path, allowed: ["from", "to", "reason", "timezone"], required: ["from", "to"], owner: owner)
        else { return nil }
        let zone = timeZone(f["timezone"]?.value, "\(path).timezone", owner: owner)
        var calendar = Calendar(identifier: .gregorian)
        if let zone { calendar.timeZone = zone }
        func day(_ field: String) -> Date? {
            guard let node = f[field]?.value, let text = string(node, "\(path).\(field)", owner: owner) else {
                return nil
            }
            let parts = text.split(separator: "-").compactMap { Int($0) }
            if parts.count == 3, text.count == 10,
                let date = calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])),
                calendar.component(.day, from: date) == parts[2]
            {
                return date
            }
            error(node, "\(owner)\(path).\(field): '\(text)' is not a date (write it as YYYY-MM-DD)")
            return nil
        }
        let reason = f["reason"].flatMap { string($0.value, "\(path).reason", owner: owner) }
        guard let from = day("from"), let to = day("to"), zone != nil else { return nil }
        guard from <= to, let until = calendar.date(byAdding: .day, value: 1, to: to) else {
            error(node, "\(owner)\(path): 'from' is after 'to'")
            return nil
        }
        return EnvironmentManifest.Freeze(from: from, until: until, reason: reason, location: location(node))
    }

    static let modifying: Set<String> = ["INSERT", "UPDATE", "DELETE", "MERGE"]

    /// A list of distinct valid names (migrations, executors), with where each was written.
    mutating func nameList(
        _ node: Node, _ path: String, kind: String, owner: String
    ) -> ([String], [SourceLocation]) {
        var names: [String] = []
        var places: [SourceLocation] = []
        for (text, item) in stringList(node, path, owner: owner) ?? [] {
            if !Naming.isValidName(text) {
                error(item, "\(owner)\(path): '\(text)' is not a valid \(kind) name")
            } else if names.contains(text) {
                error(item, "\(owner)\(path): '\(text)' is listed twice")
            } else {
                names.append(text)
                places.append(location(item))
            }
        }
        return (names, places)
    }

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

    /// A share from 0 (or `minimum`) to 100, written `25%` or `25`.
    mutating func percent(_ node: Node, _ path: String, owner: String, minimum: Int = 0) -> Int? {
        guard let text = string(node, path, owner: owner) else { return nil }
        let digits = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Int(digits), (minimum...100).contains(value) else {
            error(node, "\(owner)\(path): expected a percentage from \(minimum)% to 100%, found '\(text)'")
            return nil
        }
        return value
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

    mutating func version(_ node: Node, _ path: String, owner: String) -> String? {
        guard let text = string(node, path, owner: owner) else { return nil }
        guard Naming.isValidVersion(text) else {
            error(
                node,
                "\(owner)\(path): '\(text)' is not a valid version (letters, digits and . _ + - : @, "
                    + "starting with a letter or digit, no '/' or '..')")
            return nil
        }
        return text
    }
}
