import Foundation

extension NodeReader {
    /// One top-level document: the envelope (`apiVersion`, `kind`, `metadata`, `spec`) and its kind's spec.
    ///
    /// The one place a document's fields get their prefix: `document` for the envelope, the kind for
    /// `metadata` (whose name is not known yet), `Kind 'name': ` for everything under `spec`.
    mutating func document(_ root: Node) -> ManifestDocument? {
        let envelope = ["apiVersion", "kind", "metadata", "spec"]
        guard let top = fields(Field(node: root, path: "", owner: "document"), allowed: envelope, required: envelope)
        else { return nil }
        if let field = top["apiVersion"], let version = string(field), version != ManifestDecoder.apiVersion {
            error(field.node, "apiVersion: '\(version)' is not supported; expected '\(ManifestDecoder.apiVersion)'")
        }
        guard let kindField = top["kind"], let kindText = string(kindField) else { return nil }
        guard let kind = ManifestKind(rawValue: kindText) else {
            let known = ManifestKind.allCases.map(\.rawValue)
            let hint = closest(kindText, in: known).map { "; did you mean '\($0)'?" } ?? ""
            error(
                kindField.node,
                "kind: unknown kind '\(kindText)'\(hint); expected one of \(known.joined(separator: ", "))")
            return nil
        }
        guard let metadataNode = top["metadata"]?.node,
            let metadata = fields(
                Field(node: metadataNode, path: ".metadata", owner: kind.rawValue),
                allowed: ["name", "labels", "annotations"], required: ["name"]),
            let nameField = metadata["name"], let name = self.name(nameField)
        else { return nil }
        for extra in ["labels", "annotations"] {
            if let field = metadata[extra] { _ = stringMap(field) }
        }
        guard let specNode = top["spec"]?.node else { return nil }
        let spec = Field(node: specNode, path: "spec", owner: "\(kind.rawValue) '\(name)': ")
        let at = location(nameField.node)
        let document: ManifestDocument?
        switch kind {
        case .executor: document = executor(spec, name: name, at: at).map(ManifestDocument.executor)
        case .environment: document = environment(spec, name: name, at: at).map(ManifestDocument.environment)
        case .service: document = service(spec, name: name, at: at).map(ManifestDocument.service)
        case .policy: document = policy(spec, name: name, at: at).map(ManifestDocument.policy)
        case .analysis: document = analysis(spec, name: name, at: at).map(ManifestDocument.analysis)
        case .migration: document = migration(spec, name: name, at: at).map(ManifestDocument.migration)
        }
        if document == nil { brokenNames.insert("\(kind.rawValue)/\(name)") }
        return document
    }

    /// A mapping of text to text (`labels`, `env`, `headers`).
    mutating func stringMap(_ field: Field) -> [String: String]? {
        guard case .mapping(let mapping) = field.node else {
            error(field, "expected a mapping, found \(describe(field.node))")
            return nil
        }
        var result: [String: String] = [:]
        for (key, value) in mapping {
            guard let name = string(field.at(key)), let text = string(field.child(name, value)) else { continue }
            result[name] = text
        }
        return result
    }

    mutating func number(_ field: Field, in range: ClosedRange<Double>) -> Double? {
        guard let text = string(field) else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            error(field, "expected a number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

    /// A list of distinct valid names (migrations, executors), with where each was written.
    mutating func nameList(_ field: Field, kind: String) -> ([String], [SourceLocation]) {
        var names: [String] = []
        var places: [SourceLocation] = []
        for (text, item) in stringList(field) ?? [] {
            if !Naming.isValidName(text) {
                error(field.at(item), "'\(text)' is not a valid \(kind) name")
            } else if names.contains(text) {
                error(field.at(item), "'\(text)' is listed twice")
            } else {
                names.append(text)
                places.append(location(item))
            }
        }
        return (names, places)
    }

    /// A share from 0 (or `minimum`) to 100, written `25%` or `25`.
    mutating func percent(_ field: Field, minimum: Int = 0) -> Int? {
        guard let text = string(field) else { return nil }
        let digits = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let value = Int(digits), (minimum...100).contains(value) else {
            error(field, "expected a percentage from \(minimum)% to 100%, found '\(text)'")
            return nil
        }
        return value
    }

    mutating func version(_ field: Field) -> String? {
        guard let text = string(field) else { return nil }
        guard Naming.isValidVersion(text) else {
            error(
                field,
                "'\(text)' is not a valid version (letters, digits and . _ + - : @, "
                    + "starting with a letter or digit, no '/' or '..')")
            return nil
        }
        return text
    }
}
