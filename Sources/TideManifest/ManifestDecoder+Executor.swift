import Foundation
internal import Yams

extension NodeReader {
    mutating func executor(_ spec: Node, name: String, at: SourceLocation, owner: String) -> ExecutorManifest? {
        guard
            let f = fields(
                spec, "spec",
                allowed: [
                    "type", "command", "timeout", "env", "path", "configDir", "test", "reload", "url", "environments",
                    "password",
                ] + Resilience.executorFields,
                required: ["type"],
                owner: owner)
        else { return nil }
        let before = diagnostics.count
        let settings = resilience(f, owner: owner)
        var valid = diagnostics.count == before
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
        let kind: ExecutorManifest.Kind
        switch type {
        case .command: kind = .command(command)
        case .plugin: kind = .plugin(command)
        case .flags: kind = .flags(path: path ?? "")
        case .nginx:
            var nginx = ExecutorManifest.Nginx(configDir: path ?? "")
            if let test = nginxCommands["test"] { nginx.test = test }
            if let reload = nginxCommands["reload"] { nginx.reload = reload }
            kind = .nginx(nginx)
        case .sql: kind = .sql(database ?? DatabaseSpec(url: nil))
        }
        var manifest = ExecutorManifest(name: name, location: at, kind: kind, timeout: timeout, environment: env)
        manifest.resilience = settings
        return manifest
    }
}
