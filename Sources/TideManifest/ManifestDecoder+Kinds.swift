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
            let hint = closest(kindText, in: known).map { "; did you mean '\($0)'?" } ?? ""
            error(kindNode, "kind: unknown kind '\(kindText)'\(hint); expected one of \(known.joined(separator: ", "))")
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

    mutating func number(_ node: Node, _ path: String, owner: String, in range: ClosedRange<Double>) -> Double? {
        guard let text = string(node, path, owner: owner) else { return nil }
        guard let value = Double(text), value.isFinite, range.contains(value) else {
            error(node, "\(owner)\(path): expected a number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return value
    }

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
