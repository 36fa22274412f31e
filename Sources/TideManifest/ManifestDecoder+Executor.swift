import Foundation

extension NodeReader {
    /// Fields that only some executor types have, and which.
    private static let typeFields: [String: [ExecutorManifest.ExecutorType]] = [
        "command": [.command, .plugin], "path": [.flags], "configDir": [.nginx], "test": [.nginx],
        "reload": [.nginx], "url": [.sql, .http], "environments": [.sql], "password": [.sql], "headers": [.http],
        "secret": [.http], "caFile": [.http],
    ]

    /// An Executor's `spec` (`root`): the fields every type has, then its type's own.
    mutating func executor(_ root: Field, name: String, at: SourceLocation) -> ExecutorManifest? {
        guard
            let f = fields(
                root,
                allowed: ["type", "timeout", "env"] + Self.typeFields.keys.sorted() + Resilience.executorFields,
                required: ["type"])
        else { return nil }
        let before = diagnostics.count
        let settings = resilience(f)
        guard let typeField = f["type"], let type = executorType(typeField) else { return nil }
        for name in f.names.sorted() {
            guard let types = Self.typeFields[name], !types.contains(type), let key = f.key(name) else { continue }
            let which =
                name == "command"
                ? "a command or plugin executor runs a command"
                : "\(types.map(article).joined(separator: " or ")) executor has '\(name)'"
            error(key, name == "path" ? "only a flags executor writes a file" : "only \(which)")
        }
        var timeout = 300.0
        if let field = f["timeout"], let seconds = duration(field) {
            if seconds > 0 { timeout = seconds } else { error(field, "must be longer than 0s") }
        }
        var env: [String: String] = [:]
        if let field = f["env"], let map = stringMap(field) {
            for key in map.keys.sorted() where key.hasPrefix("TIDE_") {
                error(field.child(key, field.node), "TIDE_* variables are set by tide itself")
            }
            for key in map.keys.sorted() where !Self.isVariableName(key) {
                error(
                    field.child(key, field.node),
                    "'\(Diagnostic.printable(key))' is not an environment variable name (letters, digits and _, "
                        + "not first a digit)")
            }
            for key in map.keys.sorted() where (key.utf8.count + 1 + map[key]!.utf8.count) >= Self.longestArgument {
                error(field.child(key, field.node), Self.tooLong("the variable"))
            }
            env = map
        }
        let kind: ExecutorManifest.Kind?
        switch type {
        case .command, .plugin:
            let argv = command(f, root: root)
            if let argv, Self.execBytes(argv, env) >= Self.mostExecBytes {
                error(
                    f["command"] ?? root,
                    "the command and env together are \(Self.execBytes(argv, env) / 1024) KiB; Linux starts a program "
                        + "with at most about 2 MiB of arguments and environment, Tide's own variables and the config "
                        + "included, so they must stay under \(Self.mostExecBytes / 1024) KiB; put the rest in a file the "
                        + "program reads")
            }
            kind = argv.map { type == .command ? .command($0) : .plugin($0) }
        case .flags:
            kind = requiredText(f, "path", root: root, why: "the JSON file the flags executor publishes").map {
                .flags(path: $0)
            }
        case .nginx: kind = nginx(f, root: root).map { .nginx($0) }
        case .sql: kind = database(f, root: root).map { .sql($0) }
        case .http: kind = httpExecutor(f, root: root).map { .http($0) }
        }
        guard let kind, diagnostics.count == before else { return nil }
        var manifest = ExecutorManifest(name: name, location: at, kind: kind, timeout: timeout, environment: env)
        manifest.resilience = settings
        for field in ["command", "test", "reload"] {
            if let node = f[field]?.node { manifest.fieldLocations[field] = location(node) }
        }
        return manifest
    }

    private func article(_ type: ExecutorManifest.ExecutorType) -> String {
        [.nginx, .http].contains(type) ? "an \(type.rawValue)" : "a \(type.rawValue)"
    }

    private mutating func executorType(_ field: Field) -> ExecutorManifest.ExecutorType? {
        guard let text = string(field) else { return nil }
        if let known = ExecutorManifest.ExecutorType(rawValue: text) { return known }
        let known = ExecutorManifest.ExecutorType.allCases.map(\.rawValue)
        error(
            field,
            "unknown executor type '\(text)'; expected \(known.dropLast().joined(separator: ", ")) or \(known.last!)")
        return nil
    }

    /// `command`: argv, the program first.
    private mutating func command(_ f: FieldMap, root: Field) -> [String]? {
        guard let field = f["command"] else {
            error(root, "missing required field 'command' for a \(f["type"].flatMap { $0.node.string } ?? "") executor")
            return nil
        }
        guard let items = stringList(field) else { return nil }
        let argv = items.map(\.0)
        guard let program = argv.first, !program.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            error(field, "must name a program to run")
            return nil
        }
        for (index, argument) in argv.enumerated() where argument.utf8.count >= Self.longestArgument {
            error(field.item(index, items[index].1), Self.tooLong("an argument"))
            return nil
        }
        return argv
    }

    /// Linux refuses to start a program with one argument or environment string this long or longer
    /// (`MAX_ARG_STRLEN`, 32 pages): refused here rather than failing every deployment at exec ("Argument list too
    /// long"), counted against DORA.
    static let longestArgument = 128 * 1024

    /// What a command's argv and env may take together: half of what Linux allows all of them (`ARG_MAX`, 2 MiB
    /// with the default stack), so Tide's `TIDE_*` variables and the passed-on environment fit beside them.
    static let mostExecBytes = 1024 * 1024

    /// The bytes `execve` copies for `argv` and `env`: each string with its terminating NUL, and its pointer.
    static func execBytes(_ argv: [String], _ env: [String: String]) -> Int {
        argv.reduce(0) { $0 + $1.utf8.count + 1 + 8 }
            + env.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 2 + 8 }
    }

    static func tooLong(_ what: String) -> String {
        "\(what) is \(longestArgument / 1024) KiB or longer, which Linux refuses to pass to a program "
            + "(\"Argument list too long\" at every deployment); put it in a file the program reads"
    }

    /// A required non-empty text field (`path`, `configDir`).
    private mutating func requiredText(_ f: FieldMap, _ name: String, root: Field, why: String) -> String? {
        guard let field = f[name] else {
            error(root, "missing required field '\(name)' (\(why))")
            return nil
        }
        guard let text = string(field) else { return nil }
        guard !text.isEmpty else {
            error(field, "'\(name)' is empty (\(why))")
            return nil
        }
        return text
    }

    /// `configDir`, and the `test` and `reload` commands.
    private mutating func nginx(_ f: FieldMap, root: Field) -> ExecutorManifest.Nginx? {
        guard let directory = requiredText(f, "configDir", root: root, why: "where tide writes nginx include files")
        else { return nil }
        var nginx = ExecutorManifest.Nginx(configDir: directory)
        for name in ["test", "reload"] {
            guard let field = f[name] else { continue }
            guard let argv = stringList(field), !argv.isEmpty else {
                error(field, "expected a command (a list: program and arguments)")
                continue
            }
            if let long = argv.indices.first(where: { argv[$0].0.utf8.count >= Self.longestArgument }) {
                error(field.item(long, argv[long].1), Self.tooLong("an argument"))
                continue
            }
            if name == "test" { nginx.test = argv.map(\.0) } else { nginx.reload = argv.map(\.0) }
        }
        return nginx
    }

    /// `url` and/or `environments.NAME.url`, and `password: {env: VARIABLE}` or `{file: PATH}`.
    private mutating func database(_ f: FieldMap, root: Field) -> DatabaseSpec? {
        var database = DatabaseSpec(url: nil)
        if let field = f["url"] { database.url = databaseURL(field) }
        if let field = f["environments"] {
            if case .mapping(let entries) = field.node {
                for (key, value) in entries {
                    guard let environment = string(field.at(key)) else { continue }
                    let place = field.child(environment, value)
                    guard let g = fields(place, allowed: ["url"], required: ["url"]), let url = g["url"] else {
                        continue
                    }
                    if let parsed = databaseURL(url) { database.environmentURLs[environment] = parsed }
                }
            } else {
                error(field, "expected a mapping of environment: {url: …}")
            }
        }
        if f["url"] == nil && f["environments"] == nil {
            error(root, "a sql executor needs url (or environments.NAME.url)")
        }
        if let field = f["password"] {
            database.password = secretReference(field, what: "password")
        }
        return database
    }

    /// `{env: VARIABLE}` or `{file: /ABSOLUTE/PATH}`; anything else is refused without repeating it (it may be
    /// the secret itself). `what`: the password, a header value, a signing key.
    mutating func secretReference(_ field: Field, what: String) -> PasswordSource? {
        guard case .mapping = field.node else {
            error(field, "expected {env: VARIABLE} or {file: PATH}, never the \(what) itself (the value is not shown)")
            return nil
        }
        guard let g = fields(field, allowed: ["env", "file"]) else { return nil }
        guard g.entries.count == 1 else {
            error(field, "give one of env: VARIABLE or file: PATH")
            return nil
        }
        if let env = g["env"] {
            guard let name = string(env) else { return nil }
            guard Self.isVariableName(name) else {
                error(env, "'\(name)' is not an environment variable name (letters, digits and _, not first a digit)")
                return nil
            }
            guard !["PATH", "HOME", "USER", "SHELL", "LANG", "TZ", "PWD", "TMPDIR"].contains(name) else {
                error(env, "'\(name)' is a variable every process needs; name one that holds only the \(what)")
                return nil
            }
            // Tide's own variables (its git credentials among them) never go to a server a manifest names.
            guard !name.hasPrefix("TIDE_"), !SecretVariables.tideOwn.contains(name) else {
                error(env, "'\(name)' is one of Tide's own variables; name one that holds only the \(what)")
                return nil
            }
            // The variable is Tide's secret from now on: no process Tide starts inherits it.
            SecretVariables.withhold(name)
            return .environment(name)
        }
        guard let file = g["file"], let path = string(file) else { return nil }
        if let problem = SecretFiles.problem(with: path) {
            error(file, problem)
            return nil
        }
        return .file(path)
    }

    static func isVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(48...57).contains(first) else { return false }
        return name.utf8.allSatisfy {
            (65...90).contains($0) || (97...122).contains($0) || (48...57).contains($0) || $0 == 95
        }
    }

    private mutating func databaseURL(_ field: Field) -> DatabaseURL? {
        guard let text = string(field) else { return nil }
        do {
            return try DatabaseURL(parsing: text)
        } catch {
            self.error(field, "\(error)")
            return nil
        }
    }
}
