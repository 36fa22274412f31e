import Foundation

/// A node together with the field path that leads to it (`spec.strategy.steps[2]`) and the document it belongs to,
/// so a diagnostic names `file:line:column`, the document and the path without anyone typing the path out.
struct Field {
    let node: Node
    /// The field path from the document's root, e.g. `spec.strategy.steps[2].setWeight` (made into text only when
    /// a message needs it: most fields are read without a problem).
    var path: String { route.text }
    /// `Kind 'name': `, the document's prefix of every message.
    let owner: String
    private let route: Route

    /// The steps from the document's root to a field.
    private indirect enum Route {
        case root(String)
        case child(Route, String)
        case item(Route, Int)

        var text: String {
            switch self {
            case .root(let path): path
            case .child(let parent, let name): "\(parent.text).\(name)"
            case .item(let parent, let index): "\(parent.text)[\(index)]"
            }
        }
    }

    init(node: Node, path: String, owner: String) {
        self.init(node: node, route: .root(path), owner: owner)
    }

    private init(node: Node, route: Route, owner: String) {
        self.node = node
        self.route = route
        self.owner = owner
    }

    /// The value of the mapping entry `name` under this field.
    func child(_ name: String, _ node: Node) -> Field { Field(node: node, route: .child(route, name), owner: owner) }

    /// The list item at `index` under this field.
    func item(_ index: Int, _ node: Node) -> Field { Field(node: node, route: .item(route, index), owner: owner) }

    /// The same field, reported at another node (a list's last item, a mapping's key).
    func at(_ node: Node) -> Field { Field(node: node, route: route, owner: owner) }

    /// The list items under this field, each with its path; nil when the node is not a list.
    var items: [Field]? {
        guard case .sequence(let sequence) = node else { return nil }
        return sequence.enumerated().map { item($0.offset, $0.element) }
    }
}

/// The entries of a mapping that passed the allowed-keys check, each reachable as a `Field`.
struct FieldMap {
    /// The mapping itself.
    let field: Field
    let entries: [String: (key: Node, value: Node)]

    subscript(_ name: String) -> Field? { entries[name].map { field.child(name, $0.value) } }

    /// Where the key `name` was written (for a message about the key rather than its value).
    func key(_ name: String) -> Field? { entries[name].map { field.child(name, $0.key) } }

    var names: [String] { Array(entries.keys) }
}

extension NodeReader {
    /// A diagnostic at the field, prefixed with its document and path.
    mutating func error(_ field: Field, _ message: String) {
        error(field.node, "\(field.owner)\(field.path): \(message)")
    }

    /// A value of `E`, whose raw values are the allowed spellings: anything else is an error listing them all
    /// (from the enum itself), with the closest one as a hint.
    mutating func oneOf<E: CaseIterable & RawRepresentable>(_ field: Field, _: E.Type = E.self) -> E?
    where E.RawValue == String {
        guard let text = string(field) else { return nil }
        if let value = E(rawValue: text) { return value }
        let known = E.allCases.map(\.rawValue)
        let hint = closest(text, in: known).map { "; did you mean '\($0)'?" } ?? ""
        error(field, "'\(text)' is not one of \(known.joined(separator: ", "))\(hint)")
        return nil
    }

    /// A list of values of `E` (see `oneOf`).
    mutating func listOf<E: CaseIterable & RawRepresentable>(_ field: Field, _: E.Type = E.self) -> [E]?
    where E.RawValue == String {
        guard let items = field.items else {
            error(field, "expected a list, found \(describe(field.node))")
            return nil
        }
        return items.compactMap { oneOf($0, E.self) }
    }
}
