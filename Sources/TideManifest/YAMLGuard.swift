/// Limits `YAMLComposer` applies to libyaml's event stream as it builds a file's trees.
///
/// An alias is its anchor's tree, so ten levels of aliases are 10¹⁰ nodes for whatever walks the tree (the
/// decoder, `config` converted to JSON): a few hundred bytes of YAML that would run for ever and eat memory. Each
/// alias is counted as the whole tree it stands for, and a file whose aliases expand too far is refused. Unknown
/// tags (`!secret`, `!!python/object`) are refused too: a reader that ignored them would have Tide act on a value
/// the author meant something else by.
enum YAMLGuard {
    /// Nodes that aliases may add to a file, counting each alias as the whole tree it stands for.
    static let maximumAliasExpansion = 100_000
    /// Bytes of text that aliases may add (one alias of a long string is one node, but all of its text).
    static let maximumAliasBytes = 10 << 20
    /// The deepest nesting of lists and mappings in a file (the decoder walks trees recursively).
    static let maximumNesting = 256
    /// The standard tags a manifest may write (`!!str`, …); anything else is refused.
    static let allowedTags: Set<String> = Set(
        ["str", "int", "float", "bool", "null", "map", "seq"].map { "tag:yaml.org,2002:" + $0 })

    struct Problem: Error, Equatable {
        let line: Int
        let column: Int
        let message: String
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
        var text = text
        return text.withUTF8 { bytes in
            var line = 1
            var column = 1
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                let name: String? =
                    switch byte {
                    // A carriage return alone (not before a newline) is a line break for YAML too.
                    case 0x0D where index + 1 == bytes.count || bytes[index + 1] != 0x0A:
                        "a carriage return not followed by a newline"
                    case 0xC2 where index + 1 < bytes.count && bytes[index + 1] == 0x85: hiddenLineBreaks["\u{85}"]
                    case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && bytes[index + 2] == 0xA8:
                        hiddenLineBreaks["\u{2028}"]
                    case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && bytes[index + 2] == 0xA9:
                        hiddenLineBreaks["\u{2029}"]
                    default: nil
                    }
                if let name {
                    return Problem(
                        line: line, column: column,
                        message: "\(name) is a line break for YAML but not for a person reading the file (what "
                            + "follows it on this line would be read as YAML, not as part of the comment or text it "
                            + "seems to be in); remove it, or write it as an escape in a double-quoted string")
                }
                if byte == 0x0A {
                    line += 1
                    column = 1
                } else if byte & 0xC0 != 0x80 {
                    column += 1  // one per Unicode scalar: continuation bytes are not counted
                }
                index += 1
            }
            return nil
        }
    }

    /// The message for a tag a manifest may not write (nil for `!` and the standard tags).
    static func unknownTag(_ tag: String) -> String? {
        guard tag != "!", !allowedTags.contains(tag) else { return nil }
        return "unknown YAML tag '\(shown(tag))'; manifests may use only "
            + "!!str, !!int, !!float, !!bool, !!null, !!map and !!seq"
    }

    /// A tag as a person writes it (`!!int`), cut to 60 characters and with control characters escaped.
    static func shown(_ tag: String) -> String {
        let short = tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst(18) : tag
        return Diagnostic.printable(String(short.prefix(60)))
    }
}
