internal import CYaml

/// Limits checked on libyaml's event stream before Yams builds a tree from a file.
///
/// Yams expands every alias into a full copy of its anchor while it builds nodes, and hashes whole keys to find
/// duplicates, so ten levels of aliases (or two `? *alias : 1` keys) are 10¹⁰ nodes: a few hundred bytes of
/// YAML that run for ever and eat memory. The events are read here first, without building anything, counting
/// what each anchor would expand to. Unknown tags (`!secret`, `!!python/object`) are refused here too: Yams
/// would quietly drop them, and Tide would then act on a value the author meant something else by.
///
/// Any decoder that replaces Yams must keep these limits.
enum YAMLGuard {
    /// Nodes that aliases may add to a file, counting each alias as the whole tree it stands for.
    static let maximumAliasExpansion = 100_000
    /// Bytes of text that aliases may add (one alias of a long string is one node, but all of its text).
    static let maximumAliasBytes = 10 << 20
    /// The deepest nesting of lists and mappings in a file (Yams builds trees recursively).
    static let maximumNesting = 256
    /// The standard tags a manifest may write (`!!str`, …); anything else is refused.
    static let allowedTags: Set<String> = Set(
        ["str", "int", "float", "bool", "null", "map", "seq"].map { "tag:yaml.org,2002:" + $0 })

    struct Problem: Error, Equatable {
        let line: Int
        let column: Int
        let message: String
    }

    /// The first problem in `text`, or nil when Yams may parse it. YAML syntax errors are left to Yams, which
    /// reports them with more context.
    static func check(_ text: String) -> Problem? {
        if let problem = hiddenLineBreak(in: text) { return problem }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else { return nil }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var walk = Walk()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT { return nil }
                if let problem = walk.take(event) { return problem }
            }
        }
    }

    /// Characters YAML takes for a line break that editors, diffs and code review show inside a line: NEL
    /// (U+0085), LINE SEPARATOR (U+2028) and PARAGRAPH SEPARATOR (U+2029). After one, `# a comment<NEL>
    /// version: "6.6.6"` is a key a reviewer reads as part of a comment. Refused anywhere in a file, raw; a quoted
    /// string that needs one writes it as an escape (`"\N"`, `"\L"`, `"\P"`).
    static let hiddenLineBreaks: [Unicode.Scalar: String] = [
        "\u{85}": "U+0085 (NEXT LINE)", "\u{2028}": "U+2028 (LINE SEPARATOR)",
        "\u{2029}": "U+2029 (PARAGRAPH SEPARATOR)",
    ]

    /// The first hidden line break in `text`, at the line and column a person sees (lines split at `\n` only).
    static func hiddenLineBreak(in text: String) -> Problem? {
        var line = 1
        var column = 1
        let scalars = Array(text.unicodeScalars)
        for (index, scalar) in scalars.enumerated() {
            // A carriage return alone (not before a newline) is a line break for YAML too.
            let loneReturn = scalar == "\r" && (index + 1 == scalars.count || scalars[index + 1] != "\n")
            if let name = loneReturn ? "a carriage return not followed by a newline" : hiddenLineBreaks[scalar] {
                return Problem(
                    line: line, column: column,
                    message: "\(name) is a line break for YAML but not for a person reading the file (what follows "
                        + "it on this line would be read as YAML, not as part of the comment or text it seems to be "
                        + "in); remove it, or write it as an escape in a double-quoted string")
            }
            if scalar == "\n" {
                line += 1
                column = 1
            } else {
                column += 1
            }
        }
        return nil
    }

    /// The running count over one stream: what each anchor expands to, and the open collections.
    private struct Walk {
        /// Kept across documents, as Yams keeps them (a later document may name an earlier one's anchor).
        var anchors: [String: (size: Int, bytes: Int)] = [:]
        /// An open list or mapping: its anchor, the nodes it holds so far (expanded), and for a mapping the
        /// plain keys seen (to name a duplicate where it is written, not where the first one is).
        struct Frame {
            var anchor: String?
            var size = 1
            var bytes = 0
            var isMapping: Bool
            var children = 0
            var keys: [String: Int] = [:]
        }
        var open: [Frame] = []
        var expansion = 0
        var expansionBytes = 0

        /// True when the next node completes a key of the innermost open mapping.
        var atKey: Bool { open.last.map { $0.isMapping && $0.children % 2 == 0 } ?? false }

        mutating func take(_ event: yaml_event_t) -> Problem? {
            let mark = event.start_mark
            func problem(_ message: String) -> Problem {
                Problem(line: mark.line + 1, column: mark.column + 1, message: message)
            }
            switch event.type {
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                if scalar.quoted_implicit == 0, scalar.plain_implicit == 0, let tag = unknownTag(scalar.tag) {
                    return problem(tagMessage(tag))
                }
                if let tag = string(scalar.tag), tag == Self.map || tag == Self.seq {
                    return problem("a plain value tagged \(shown(tag)); !!map and !!seq tag mappings and lists")
                }
                if var parent = open.last, parent.isMapping, parent.children % 2 == 0 {
                    let key = String(
                        decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                    if let first = parent.keys[key] {
                        return problem(
                            "duplicate key '\(Diagnostic.printable(String(key.prefix(60))))' (first at line \(first))")
                    }
                    parent.keys[key] = mark.line + 1
                    open[open.count - 1] = parent
                }
                close(anchor: string(scalar.anchor), size: 1, bytes: scalar.length)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isSequence = event.type == YAML_SEQUENCE_START_EVENT
                let start = isSequence ? event.data.sequence_start.implicit : event.data.mapping_start.implicit
                let tag = isSequence ? event.data.sequence_start.tag : event.data.mapping_start.tag
                if start == 0, let tag = unknownTag(tag) { return problem(tagMessage(tag)) }
                if start == 0, let tag = string(tag), tag != "!", tag != (isSequence ? Self.seq : Self.map) {
                    return problem("a \(isSequence ? "list" : "mapping") tagged \(shown(tag))")
                }
                // Tide reads keys as names; a list or mapping as a key only lets Yams compare whole trees to find
                // duplicates (exponential in their depth).
                if atKey {
                    return problem("a mapping key must be a plain value, not a \(isSequence ? "list" : "mapping")")
                }
                guard open.count < YAMLGuard.maximumNesting else {
                    return problem("lists and mappings nested more than \(YAMLGuard.maximumNesting) levels deep")
                }
                let anchor = isSequence ? event.data.sequence_start.anchor : event.data.mapping_start.anchor
                open.append(Frame(anchor: string(anchor), isMapping: !isSequence))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let finished = open.popLast() else { return nil }
                close(anchor: finished.anchor, size: finished.size, bytes: finished.bytes)
            case YAML_ALIAS_EVENT:
                if atKey { return problem("a mapping key must be a plain value, not an alias") }
                // An undefined alias is Yams' error to report; it stands for one node here.
                let anchored = string(event.data.alias.anchor).flatMap { anchors[$0] } ?? (1, 0)
                expansion += anchored.size
                expansionBytes += anchored.bytes
                guard expansion <= YAMLGuard.maximumAliasExpansion else {
                    return problem(
                        "YAML aliases expand to more than \(YAMLGuard.maximumAliasExpansion) values; "
                            + "Tide refuses alias bombs (write the values out, or use fewer aliases)")
                }
                guard expansionBytes <= YAMLGuard.maximumAliasBytes else {
                    return problem(
                        "YAML aliases expand to more than \(YAMLGuard.maximumAliasBytes >> 20) MiB of text; "
                            + "Tide refuses alias bombs (write the values out, or use fewer aliases)")
                }
                close(anchor: nil, size: anchored.size, bytes: anchored.bytes)
            default:
                break
            }
            return nil
        }

        /// Adds a finished node to the collection holding it, and remembers what its anchor stands for.
        private mutating func close(anchor: String?, size: Int, bytes: Int) {
            if let anchor { anchors[anchor] = (size, bytes) }
            if !open.isEmpty {
                open[open.count - 1].size += size
                open[open.count - 1].bytes += bytes
                open[open.count - 1].children += 1
            }
        }

        private func unknownTag(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let tag = string(pointer), tag != "!", !YAMLGuard.allowedTags.contains(tag) else { return nil }
            return tag
        }

        static let map = "tag:yaml.org,2002:map"
        static let seq = "tag:yaml.org,2002:seq"

        private func shown(_ tag: String) -> String {
            let short = tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst(18) : tag
            return Diagnostic.printable(String(short.prefix(60)))
        }

        private func tagMessage(_ tag: String) -> String {
            "unknown YAML tag '\(shown(tag))'; manifests may use only "
                + "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
        }

        private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            guard let pointer else { return nil }
            return String(cString: pointer)
        }
    }
}
