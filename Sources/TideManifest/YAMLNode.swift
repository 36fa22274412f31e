/// A YAML value as the decoder reads it: a scalar, a mapping or a list, each with where it was written and its tag
/// resolved as YAML's failsafe schema does (an untagged plain scalar reads as `!!str` here; `Node.tagName` types it
/// by YAML 1.1's rules). Built by `YAMLComposer` from libyaml's events; an alias is the node its anchor names.
indirect enum Node: Sendable {
    case scalar(Scalar)
    case mapping(Mapping)
    case sequence(List)

    /// Where a node starts, from 1 (libyaml counts columns in Unicode scalars).
    struct Mark: Sendable, Hashable {
        let line: Int
        let column: Int
    }

    struct Scalar: Sendable {
        /// How a scalar was written; only plain scalars are typed by YAML 1.1's rules.
        enum Style: Sendable { case plain, singleQuoted, doubleQuoted, literal, folded }

        let string: String
        let tag: Tag.Name
        let style: Style
        let mark: Mark
    }

    /// A mapping's entries in the order written.
    struct Mapping: Sendable, RandomAccessCollection {
        let pairs: [(key: Node, value: Node)]
        let tag: Tag.Name
        let mark: Mark

        var startIndex: Int { pairs.startIndex }
        var endIndex: Int { pairs.endIndex }
        subscript(position: Int) -> (key: Node, value: Node) { pairs[position] }

        /// The value of the first entry whose key is the scalar `key`.
        subscript(key: String) -> Node? { pairs.first { $0.key.string == key }?.value }
    }

    struct List: Sendable, RandomAccessCollection {
        let nodes: [Node]
        let tag: Tag.Name
        let mark: Mark

        var startIndex: Int { nodes.startIndex }
        var endIndex: Int { nodes.endIndex }
        subscript(position: Int) -> Node { nodes[position] }
    }

    var mark: Mark? {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(let mapping): mapping.mark
        case .sequence(let list): list.mark
        }
    }

    /// The resolved tag (`tag:yaml.org,2002:str` for an untagged scalar; see `tagName` for its YAML 1.1 type).
    var tag: Tag.Name {
        switch self {
        case .scalar(let scalar): scalar.tag
        case .mapping(let mapping): mapping.tag
        case .sequence(let list): list.tag
        }
    }

    /// The value of a mapping's entry whose key is the scalar `key`; nil when there is none or this is no mapping.
    subscript(key: String) -> Node? {
        guard case .mapping(let mapping) = self else { return nil }
        return mapping[key]
    }

    /// A scalar's text; nil for a mapping or a list.
    var string: String? {
        guard case .scalar(let scalar) = self else { return nil }
        return scalar.string
    }
}

/// YAML tags by name.
enum Tag {
    struct Name: RawRepresentable, Hashable, Sendable {
        let rawValue: String

        static let str = Name(rawValue: "tag:yaml.org,2002:str")
        static let seq = Name(rawValue: "tag:yaml.org,2002:seq")
        static let map = Name(rawValue: "tag:yaml.org,2002:map")
        static let bool = Name(rawValue: "tag:yaml.org,2002:bool")
        static let float = Name(rawValue: "tag:yaml.org,2002:float")
        static let null = Name(rawValue: "tag:yaml.org,2002:null")
        static let int = Name(rawValue: "tag:yaml.org,2002:int")
        static let merge = Name(rawValue: "tag:yaml.org,2002:merge")
        static let timestamp = Name(rawValue: "tag:yaml.org,2002:timestamp")
        static let value = Name(rawValue: "tag:yaml.org,2002:value")
    }
}

extension Node {
    /// The YAML 1.1 type of a node: an untagged plain scalar (or one tagged `!!str`, which is typed like an untagged
    /// one) by `ScalarResolver`; any other node by its tag.
    var tagName: Tag.Name {
        guard case .scalar(let scalar) = self, scalar.style == .plain, scalar.tag == .str else { return tag }
        switch ScalarResolver.kind(of: scalar.string) {
        case .bool: return .bool
        case .int: return .int
        case .float: return .float
        case .merge: return .merge
        case .null: return .null
        case .timestamp: return .timestamp
        case .value: return .value
        case .string: return .str
        }
    }

    /// The value of a scalar `tagName` types as bool: YAML 1.1's true/yes/on and false/no/off, any case.
    var typedBool: Bool? {
        guard case .scalar(let scalar) = self, tagName == .bool else { return nil }
        switch scalar.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return nil
        }
    }

    /// The value of a plain scalar `tagName` types as int: `_` ignored, `0x`, `0b`, `0o` and a leading `0` (octal)
    /// read in their bases, base 60 (`1:30:00`) with an overflow check; nil when it does not fit in an Int.
    var typedInt: Int? {
        guard case .scalar(let scalar) = self, tagName == .int else { return nil }
        if scalar.string.contains(":") { return Self.sexagesimal(scalar.string) }
        guard scalar.style == .plain else { return nil }
        let text = scalar.string.replacingOccurrences(of: "_", with: "")
        if text == "0" { return 0 }
        let negative = text.hasPrefix("-")
        let digits = text.dropFirst(negative || text.hasPrefix("+") ? 1 : 0)
        for (prefix, radix) in [("0x", 16), ("0b", 2), ("0o", 8), ("0", 8)] where digits.hasPrefix(prefix) {
            return Int((negative ? "-" : "") + digits.dropFirst(prefix.count), radix: radix)
        }
        return Int(text)
    }

    /// A YAML 1.1 base-60 integer (`190:20:30`), or nil when it is not one or does not fit in an Int.
    static func sexagesimal(_ text: String) -> Int? {
        var digits = Substring(text.replacingOccurrences(of: "_", with: ""))
        let negative = digits.first == "-"
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        var value = 0
        for part in digits.split(separator: ":", omittingEmptySubsequences: false) {
            guard let place = Int(part), place >= 0 else { return nil }
            let (shifted, overflowA) = value.multipliedReportingOverflow(by: 60)
            let (sum, overflowB) = shifted.addingReportingOverflow(place)
            guard !overflowA, !overflowB else { return nil }
            value = sum
        }
        return negative ? -value : value
    }

    /// The value of a plain scalar `tagName` types as float: `.inf`, `.nan`, decimal and base 60 (`1:30.5`).
    var typedFloat: Double? {
        guard case .scalar(let scalar) = self, tagName == .float, scalar.style == .plain else { return nil }
        switch scalar.string.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default: break
        }
        var text = Substring(scalar.string.replacingOccurrences(of: "_", with: ""))
        guard text.contains(":") else { return Double(text) }
        var sign = 1.0
        if text.hasPrefix("-") {
            sign = -1
            text = text.dropFirst()
        } else if text.hasPrefix("+") {
            text = text.dropFirst()
        }
        var value = 0.0
        var base = 1.0
        for part in text.split(separator: ":", omittingEmptySubsequences: false).reversed() {
            guard let place = Double(part) else { return nil }
            value += place * base
            base *= 60
        }
        return sign * value
    }
}
