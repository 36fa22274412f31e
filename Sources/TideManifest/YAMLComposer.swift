internal import CLibYAML

/// Builds the documents of a YAML stream from libyaml's events in one pass, applying `YAMLGuard`'s limits to
/// each event as it comes: a hidden line break, an alias bomb, an unknown tag, a duplicate key, a list or mapping
/// as a key, or nesting deeper than the limit refuses the whole file (no document of it is decoded). A YAML syntax
/// error (or an alias to an anchor not defined yet) ends the stream: the documents finished before it are kept and
/// the error is reported after their diagnostics — but only if no limit is broken further on, so the events after
/// it are still walked for the limits.
///
/// An alias is the node its anchor names (the same value, not a copy); anchors are kept across documents.
struct YAMLComposer {
    /// What a stream composed to.
    enum Outcome {
        /// A limit was broken: the file is refused with this problem alone.
        case refused(YAMLGuard.Problem)
        /// The documents finished (empty ones included), and the error that ended the stream early, if any.
        case composed([Node], stopped: YAMLGuard.Problem?)
    }

    static func compose(_ text: String) -> Outcome {
        if let problem = YAMLGuard.hiddenLineBreak(in: text) { return .refused(problem) }
        var text = text
        return text.withUTF8 { buffer in
            var parser = yaml_parser_t()
            guard yaml_parser_initialize(&parser) == 1 else {
                return .composed([], stopped: YAMLGuard.Problem(line: 1, column: 1, message: "YAML error: memory"))
            }
            defer { yaml_parser_delete(&parser) }
            yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var composer = YAMLComposer()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = Self.parserProblem(parser, input: buffer)
                    return .composed(composer.documents, stopped: composer.stopped ?? problem)
                }
                defer { yaml_event_delete(&event) }
                if event.type == YAML_STREAM_END_EVENT {
                    return .composed(composer.documents, stopped: composer.stopped)
                }
                if let problem = composer.take(event) { return .refused(problem) }
            }
        }
    }

    /// An open list or mapping: what it holds so far, and the guard's count of it.
    private struct Frame {
        let isMapping: Bool
        let anchor: String?
        let tag: Tag.Name
        let mark: Node.Mark
        var items: [Node] = []
        var pairs: [(key: Node, value: Node)] = []
        var pendingKey: Node?
        /// Nodes and bytes of text it holds, counting each alias as the whole tree it stands for.
        var size = 1
        var bytes = 0
        var children = 0
        /// The scalar keys seen, with the line each was written at (to name a duplicate where it is written).
        var keys: [String: Int] = [:]

        var node: Node {
            isMapping
                ? .mapping(Node.Mapping(pairs: pairs, tag: tag, mark: mark))
                : .sequence(Node.List(nodes: items, tag: tag, mark: mark))
        }
    }

    private(set) var documents: [Node] = []
    /// The error that ended composition early (an undefined alias); the events after it are only checked.
    private(set) var stopped: YAMLGuard.Problem?
    private var anchors: [String: (node: Node, size: Int, bytes: Int)] = [:]
    private var open: [Frame] = []
    private var root: Node?
    private var expansion = 0
    private var expansionBytes = 0

    /// True when the next node completes a key of the innermost open mapping.
    private var atKey: Bool { open.last.map { $0.isMapping && $0.children % 2 == 0 } ?? false }

    private mutating func take(_ event: yaml_event_t) -> YAMLGuard.Problem? {
        let mark = Node.Mark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        func problem(_ message: String) -> YAMLGuard.Problem {
            YAMLGuard.Problem(line: mark.line, column: mark.column, message: message)
        }
        switch event.type {
        case YAML_DOCUMENT_START_EVENT:
            root = nil
        case YAML_DOCUMENT_END_EVENT:
            if stopped == nil, let root { documents.append(root) }
        case YAML_SCALAR_EVENT:
            return scalar(event.data.scalar, at: mark, problem: problem)
        case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            let isSequence = event.type == YAML_SEQUENCE_START_EVENT
            let implicit = isSequence ? event.data.sequence_start.implicit : event.data.mapping_start.implicit
            let rawTag = Self.string(isSequence ? event.data.sequence_start.tag : event.data.mapping_start.tag)
            if implicit == 0, let tag = rawTag, let message = YAMLGuard.unknownTag(tag) { return problem(message) }
            if implicit == 0, let tag = rawTag, tag != "!", tag != (isSequence ? Tag.Name.seq : .map).rawValue {
                return problem("a \(isSequence ? "list" : "mapping") tagged \(YAMLGuard.shown(tag))")
            }
            // Tide reads keys as names; a list or mapping as a key would only be compared as a whole tree.
            if atKey { return problem("a mapping key must be a plain value, not a \(isSequence ? "list" : "mapping")") }
            guard open.count < YAMLGuard.maximumNesting else {
                return problem("lists and mappings nested more than \(YAMLGuard.maximumNesting) levels deep")
            }
            let anchor = Self.string(isSequence ? event.data.sequence_start.anchor : event.data.mapping_start.anchor)
            let tag: Tag.Name =
                implicit == 0 && rawTag != nil && rawTag != "!"
                ? Tag.Name(rawValue: rawTag!) : (isSequence ? .seq : .map)  // both checked non-nil just above
            open.append(Frame(isMapping: !isSequence, anchor: anchor, tag: tag, mark: mark))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let finished = open.popLast() else { return nil }
            close(finished.node, anchor: finished.anchor, size: finished.size, bytes: finished.bytes)
        case YAML_ALIAS_EVENT:
            return alias(Self.string(event.data.alias.anchor), at: mark, problem: problem)
        default:
            break
        }
        return nil
    }

    private mutating func scalar(
        _ scalar: yaml_event_t.__Unnamed_union_data.__Unnamed_struct_scalar, at mark: Node.Mark,
        problem: (String) -> YAMLGuard.Problem
    ) -> YAMLGuard.Problem? {
        let rawTag = Self.string(scalar.tag)
        if scalar.quoted_implicit == 0, scalar.plain_implicit == 0, let tag = rawTag,
            let message = YAMLGuard.unknownTag(tag)
        {
            return problem(message)
        }
        if let tag = rawTag, tag == Tag.Name.map.rawValue || tag == Tag.Name.seq.rawValue {
            return problem("a plain value tagged \(YAMLGuard.shown(tag)); !!map and !!seq tag mappings and lists")
        }
        let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
        if let last = open.indices.last, open[last].isMapping, open[last].children % 2 == 0 {
            // In place: a copy of the frame would copy every key seen so far, for each key.
            if let first = open[last].keys[text] {
                return problem(
                    "duplicate key '\(Diagnostic.printable(String(text.prefix(60))))' (first at line \(first))")
            }
            open[last].keys[text] = mark.line
        }
        let tag: Tag.Name =
            scalar.quoted_implicit == 1 || rawTag == nil || rawTag == "!" ? .str : Tag.Name(rawValue: rawTag!)
        let node = Node.scalar(Node.Scalar(string: text, tag: tag, style: Self.style(scalar.style), mark: mark))
        close(node, anchor: Self.string(scalar.anchor), size: 1, bytes: scalar.length)
        return nil
    }

    private mutating func alias(
        _ name: String?, at mark: Node.Mark, problem: (String) -> YAMLGuard.Problem
    ) -> YAMLGuard.Problem? {
        if atKey { return problem("a mapping key must be a plain value, not an alias") }
        let anchored = name.flatMap { anchors[$0] }
        let size = anchored?.size ?? 1
        let bytes = anchored?.bytes ?? 0
        expansion += size
        expansionBytes += bytes
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
        guard let anchored else {
            // Reported once no limit is broken further on; until then the events are only counted.
            if stopped == nil { stopped = problem("YAML syntax error: found undefined alias") }
            close(
                .scalar(Node.Scalar(string: "", tag: .null, style: .plain, mark: mark)), anchor: nil, size: 1, bytes: 0)
            return nil
        }
        close(anchored.node, anchor: nil, size: size, bytes: bytes)
        return nil
    }

    /// Adds a finished node to the collection holding it (or makes it the document's root), and remembers what
    /// its anchor stands for.
    private mutating func close(_ node: Node, anchor: String?, size: Int, bytes: Int) {
        if let anchor { anchors[anchor] = (node, size, bytes) }
        guard !open.isEmpty else {
            root = node
            return
        }
        let last = open.count - 1
        open[last].size += size
        open[last].bytes += bytes
        open[last].children += 1
        if stopped != nil { return }
        if open[last].isMapping {
            if let key = open[last].pendingKey {
                open[last].pairs.append((key, node))
                open[last].pendingKey = nil
            } else {
                open[last].pendingKey = node
            }
        } else {
            open[last].items.append(node)
        }
    }

    private static func style(_ style: yaml_scalar_style_t) -> Node.Scalar.Style {
        switch style {
        case YAML_SINGLE_QUOTED_SCALAR_STYLE: .singleQuoted
        case YAML_DOUBLE_QUOTED_SCALAR_STYLE: .doubleQuoted
        case YAML_LITERAL_SCALAR_STYLE: .literal
        case YAML_FOLDED_SCALAR_STYLE: .folded
        default: .plain
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    /// libyaml's error as the problem a person reads, at the place it names.
    private static func parserProblem(_ parser: yaml_parser_t, input: UnsafeBufferPointer<UInt8>) -> YAMLGuard.Problem {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
        switch parser.error {
        case YAML_READER_ERROR:
            // At the character libyaml stopped at (its offset counts bytes; lines split at `\n` only, columns
            // count Unicode scalars as libyaml's marks do).
            var line = 1
            var column = 1
            for scalar in String(decoding: input.prefix(parser.problem_offset), as: UTF8.self).unicodeScalars {
                if scalar == "\n" {
                    line += 1
                    column = 1
                } else {
                    column += 1
                }
            }
            return YAMLGuard.Problem(line: line, column: column, message: "unreadable YAML: \(problem)")
        case YAML_SCANNER_ERROR, YAML_PARSER_ERROR:
            let mark = parser.problem_mark
            let context = parser.context.map {
                " (\(String(cString: $0)) at line \(parser.context_mark.line + 1), column \(parser.context_mark.column + 1))"
            }
            if problem.hasPrefix("Maximum nesting level reached") {  // a libyaml that has a limit of its own
                return YAMLGuard.Problem(
                    line: Int(mark.line) + 1, column: Int(mark.column) + 1,
                    message: "lists and mappings nested more than \(YAMLGuard.maximumNesting) levels deep")
            }
            return YAMLGuard.Problem(
                line: Int(mark.line) + 1, column: Int(mark.column) + 1,
                message: "YAML syntax error: \(problem)\(context ?? "")")
        default:
            return YAMLGuard.Problem(line: 1, column: 1, message: "YAML error: \(problem)")
        }
    }
}
