import Foundation

/// Decodes manifest v1 YAML into typed documents, keeping the position of every value so each problem is
/// reported as `file:line:column`. Decoding is strict: unknown fields and wrong types are errors, and all of a
/// file's problems are collected rather than stopping at the first.
public enum ManifestDecoder {
    public static let apiVersion = "tide/v1"

    /// Fields of format v1 that a later version of Tide implements; naming them gets a clear "not yet" instead
    /// of "unknown field", so nobody thinks they took effect.
    static let notYetSupported: [String: String] = [:]

    public static func decode(file: String, text: String) -> (documents: [ManifestDocument], diagnostics: [Diagnostic])
    {
        let result = decodeNamingBroken(file: file, text: text)
        return (result.documents, result.diagnostics)
    }

    /// Also names the documents (`Kind/name`) that were recognised but failed to decode, so whole-state checks
    /// do not report references to them as undefined on top of their own errors.
    static func decodeNamingBroken(
        file: String, text: String
    ) -> (documents: [ManifestDocument], diagnostics: [Diagnostic], broken: Set<String>) {
        var reader = NodeReader(file: file)
        switch YAMLComposer.compose(text) {
        case .refused(let problem):
            let location = SourceLocation(file: file, line: problem.line, column: problem.column)
            return ([], [Diagnostic(location, problem.message)], [])
        case .composed(let roots, let stopped):
            var documents: [ManifestDocument] = []
            for root in roots {
                if case .scalar(let scalar) = root, scalar.string.isEmpty || root.tagName == .null { continue }
                if let document = reader.document(root) { documents.append(document) }
            }
            if let stopped {
                let location = SourceLocation(file: file, line: stopped.line, column: stopped.column)
                reader.diagnostics.append(Diagnostic(location, stopped.message))
            }
            return (documents, reader.diagnostics, reader.brokenNames)
        }
    }
}

/// Reads typed values out of fields (YAML nodes with their paths, see `Field`), recording a diagnostic for each
/// problem and returning nil for it.
struct NodeReader {
    let file: String
    var diagnostics: [Diagnostic] = []
    /// `Kind/name` of documents that failed to decode.
    var brokenNames: Set<String> = []

    func location(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    mutating func error(_ node: Node, _ message: String) {
        diagnostics.append(Diagnostic(location(node), message))
    }

    /// The entries of a mapping field, checked against `allowed` and `required`. Returns nil (with a diagnostic)
    /// for a node that is not a mapping.
    mutating func fields(_ field: Field, allowed: [String], required: [String] = []) -> FieldMap? {
        guard case .mapping(let mapping) = field.node else {
            error(field, "expected a mapping, found \(describe(field.node))")
            return nil
        }
        var result: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else {
                error(field.at(key), "keys must be strings")
                continue
            }
            let name = scalar.string
            if allowed.contains(name) {
                result[name] = (key, value)
            } else if let feature = ManifestDecoder.notYetSupported[name] {
                error(field.child(name, key), "not supported by this version of tide yet (\(feature))")
            } else {
                let hint = closest(name, in: allowed).map { "; did you mean '\($0)'?" } ?? ""
                error(field.at(key), "unknown field '\(name)'\(hint)")
            }
        }
        for name in required where result[name] == nil {
            error(field, "missing required field '\(name)'")
        }
        return FieldMap(field: field, entries: result)
    }

    mutating func string(_ field: Field) -> String? {
        guard case .scalar(let scalar) = field.node, field.node.tagName != .null else {
            error(field, "expected a string, found \(describe(field.node))")
            return nil
        }
        // A NUL would cut the text short wherever it becomes a C string (argv, environment, paths).
        guard !scalar.string.unicodeScalars.contains("\u{0}") else {
            error(field, "contains a NUL character")
            return nil
        }
        return scalar.string
    }

    mutating func bool(_ field: Field) -> Bool? {
        guard case .scalar = field.node, field.node.tagName == .bool, let value = field.node.typedBool else {
            error(field, "expected true or false, found \(describe(field.node))")
            return nil
        }
        return value
    }

    /// The texts of a list field, each with the node it was written at.
    mutating func stringList(_ field: Field) -> [(String, Node)]? {
        guard let items = field.items else {
            error(field, "expected a list, found \(describe(field.node))")
            return nil
        }
        var result: [(String, Node)] = []
        for item in items {
            if let text = string(item) { result.append((text, item.node)) }
        }
        return result
    }

    mutating func duration(_ field: Field) -> Double? {
        guard let text = string(field) else { return nil }
        guard let seconds = ManifestDuration.seconds(text) else {
            if ManifestDuration.isTooLong(text) {
                error(field, "'\(text)' is longer than the longest duration Tide takes (3650d)")
            } else {
                error(field, "'\(text)' is not a duration (write it like 30s, 5m or 1h30m)")
            }
            return nil
        }
        return seconds
    }

    mutating func name(_ field: Field) -> String? {
        guard let text = string(field) else { return nil }
        guard Naming.isValidName(text) else {
            error(
                field,
                "'\(text)' is not a valid name (lowercase letters, digits and '-', "
                    + "starting with a letter or digit, at most 63 characters)")
            return nil
        }
        return text
    }

    /// The deepest nesting of lists and mappings a `config` may have (JSON encoders and the executors that read
    /// the request have limits of their own; 64 is far beyond any real config).
    static let maximumConfigDepth = 64

    /// Any YAML value as JSON, for the opaque `config`. Refused here, where the file, line and column are known,
    /// rather than when the request is encoded: numbers JSON cannot carry (`.inf`, `.nan`, `1e400`) and nesting
    /// deeper than `maximumConfigDepth`.
    mutating func json(_ field: Field, depth: Int = 0) -> JSONValue? {
        guard depth <= Self.maximumConfigDepth else {
            error(field, "nested more than \(Self.maximumConfigDepth) levels deep")
            return nil
        }
        switch field.node {
        case .scalar(let scalar): return jsonScalar(field, scalar)
        case .sequence:
            var items: [JSONValue] = []
            for item in field.items ?? [] {
                guard let value = json(item, depth: depth + 1) else { return nil }
                items.append(value)
            }
            return .array(items)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping {
                guard case .scalar(let scalar) = key else {
                    error(field.at(key), "keys must be strings")
                    return nil
                }
                if scalar.string == "<<", scalar.style == .plain {
                    error(field.at(key), "merge keys (<<) are not read in config; write the keys out")
                    return nil
                }
                guard let converted = json(field.child(scalar.string, value), depth: depth + 1) else { return nil }
                members[scalar.string] = converted
            }
            return .object(members)
        }
    }

    /// A scalar of a `config` as JSON, typed by its resolved tag. A plain scalar that YAML 1.1 reads otherwise
    /// than a person would (`yes`, `017`, `1:20`, `1_000`, `0b101`: see `ScalarResolver.readDifferentlyByYAML11`)
    /// is refused, so an executor never gets 15 for what a reviewer read as "017"; quoted, it is text.
    private mutating func jsonScalar(_ field: Field, _ scalar: Node.Scalar) -> JSONValue? {
        let node = field.node
        if scalar.style == .plain, node.tagName != .str,
            let reading = ScalarResolver.readDifferentlyByYAML11(scalar.string)
        {
            error(
                field,
                "'\(scalar.string)' is read by YAML 1.1 as \(reading); quote it (\"\(scalar.string)\") for the "
                    + "text, or write the value you mean plainly (true, false, 15)")
            return nil
        }
        switch node.tagName {
        case .null: return .null
        case .bool:
            guard let value = node.typedBool else {
                error(field, "'\(scalar.string)' is tagged !!bool but is not true or false")
                return nil
            }
            return .bool(value)
        case .int:
            guard let value = node.typedInt else {
                error(
                    field,
                    ScalarResolver.kind(of: scalar.string) == .int
                        ? "'\(scalar.string)' is an integer beyond what Tide carries exactly "
                            + "(±\(Int64.max)); quote it to pass it as a string"
                        : "'\(scalar.string)' is tagged !!int but is not an integer")
                return nil
            }
            return .int(Int64(value))
        case .float:
            guard node.typedFloat != nil else {
                error(field, "'\(scalar.string)' is tagged !!float but is not a number")
                return nil
            }
            if let value = node.typedFloat, !value.isFinite {
                error(field, "'\(scalar.string)' is not a finite number, which JSON cannot carry")
                return nil
            }
            return node.typedFloat.map(JSONValue.double) ?? .string(scalar.string)
        default: return .string(scalar.string)
        }
    }

    /// Where each value of a YAML tree was written, by key path (list items by their index).
    func valueLocations(_ node: Node, at path: [String] = [], into places: inout [[String]: SourceLocation]) {
        places[path] = location(node)
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                if case .scalar(let scalar) = key { valueLocations(value, at: path + [scalar.string], into: &places) }
            }
        case .sequence(let sequence):
            for (index, item) in sequence.enumerated() {
                valueLocations(item, at: path + [String(index)], into: &places)
            }
        case .scalar:
            break
        }
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar):
            if node.tagName == .null { return "nothing (null)" }
            return "'\(scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "…" : scalar.string)'"
        }
    }

    /// The allowed field nearest to a misspelt one, when it is near enough to be the likely intent.
    func closest(_ name: String, in candidates: [String]) -> String? {
        let lower = name.lowercased()
        let scored = candidates.map { ($0, Naming.editDistance(lower, $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(1, name.count / 3) else { return nil }
        return best.0
    }
}

/// Rules for names and versions that end up in paths, environment variables and SQL.
public enum Naming {
    /// DNS-label names, as Kubernetes and most platforms accept them.
    public static func isValidName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func ok(_ b: UInt8) -> Bool { (97...122).contains(b) || (48...57).contains(b) }
        guard ok(bytes.first!), ok(bytes.last!) else { return false }  // count checked above
        return bytes.allSatisfy { ok($0) || $0 == 45 }
    }

    /// Versions: letters, digits and `. _ + - : @`, starting with a letter or digit; no `/`, no `..`, so a
    /// version can safely name a directory or an image tag.
    public static func isValidVersion(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...128).contains(bytes.count), !text.contains("..") else { return false }
        func alnum(_ b: UInt8) -> Bool { (97...122).contains(b) || (65...90).contains(b) || (48...57).contains(b) }
        guard alnum(bytes.first!) else { return false }  // count checked above
        return bytes.allSatisfy { alnum($0) || [46, 95, 43, 45, 58, 64].contains($0) }
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
