import Foundation

/// Edits manifest text in place, the way a person would: only the characters that change, so comments, order and
/// formatting survive and the commit's diff is one line.
public enum ManifestEditor {
    public struct EditError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `text` with `spec.environments.ENVIRONMENT.version` of the Service `service` set to `version`.
    public static func settingVersion(
        in text: String, file: String, service: String, environment: String, version: String
    ) throws -> String {
        guard Naming.isValidVersion(version) else {
            throw EditError(description: "'\(version)' is not a valid version")
        }
        func refusal(_ problem: YAMLGuard.Problem) -> EditError {
            EditError(description: "\(file):\(problem.line):\(problem.column): \(problem.message)")
        }
        // The documents before a syntax error are edited as they were read (the error is reported if the Service
        // is not among them): a broken document further on does not stop a rollback's pin.
        let roots: [Node]
        let stopped: YAMLGuard.Problem?
        switch YAMLComposer.compose(text) {
        case .refused(let problem): throw refusal(problem)
        case .composed(let composed, let problem):
            roots = composed
            stopped = problem
        }
        var lines = text.components(separatedBy: "\n")
        for root in roots {
            guard root["kind"]?.string == "Service", root["metadata"]?["name"]?.string == service,
                case .mapping(let environments)? = root["spec"]?["environments"]
            else { continue }
            guard let (key, value) = environments.first(where: { $0.key.string == environment }) else {
                throw EditError(description: "\(file): Service '\(service)' does not run in '\(environment)'")
            }
            let quoted = "\"\(version)\""
            switch value {
            case .mapping(let mapping):
                if let existing = mapping.first(where: { $0.key.string == "version" })?.value {
                    try replaceScalar(existing, with: quoted, in: &lines, file: file)
                } else if try isFlow(mapping.mark, in: lines, file: file) {
                    try insertIntoFlow(mapping.mark, entry: "version: \(quoted)", in: &lines, file: file)
                } else {
                    guard let first = mapping.first?.key.mark else {
                        throw EditError(description: "\(file): cannot place a version in an empty block mapping")
                    }
                    lines.insert(
                        String(repeating: " ", count: first.column - 1) + "version: \(quoted)", at: first.line - 1)
                }
            case .scalar where value.tagName == .null:
                try replaceAfterKey(key, with: "{version: \(quoted)}", in: &lines, file: file)
            default:
                throw EditError(description: "\(file): spec.environments.\(environment) is not a mapping")
            }
            return lines.joined(separator: "\n")
        }
        if let stopped { throw refusal(stopped) }
        throw EditError(description: "\(file): no Service '\(service)' here")
    }

    private static func position(_ mark: Node.Mark?, in lines: [String], file: String) throws -> (Int, String.Index) {
        guard let mark, mark.line >= 1, mark.line <= lines.count else {
            throw EditError(description: "\(file): lost track of a position while editing")
        }
        let line = lines[mark.line - 1]
        let scalars = line.unicodeScalars
        guard let index = scalars.index(scalars.startIndex, offsetBy: mark.column - 1, limitedBy: scalars.endIndex)
        else { throw EditError(description: "\(file):\(mark.line): lost track of a column while editing") }
        return (mark.line - 1, index)
    }

    /// Replaces one single-line scalar (plain, 'single' or "double" quoted) where it stands.
    private static func replaceScalar(_ node: Node, with replacement: String, in lines: inout [String], file: String)
        throws
    {
        let (row, start) = try position(node.mark, in: lines, file: file)
        let line = lines[row]
        var end = start
        switch line[start] {
        case "\"":
            end = line.index(after: start)
            while end < line.endIndex && line[end] != "\"" {
                if line[end] == "\\" { end = line.index(after: end) }
                if end < line.endIndex { end = line.index(after: end) }
            }
            guard end < line.endIndex else { throw EditError(description: "\(file):\(row + 1): unterminated string") }
            end = line.index(after: end)
        case "'":
            end = line.index(after: start)
            while end < line.endIndex {
                if line[end] == "'" {
                    let next = line.index(after: end)
                    if next < line.endIndex && line[next] == "'" {
                        end = line.index(after: next)
                        continue
                    }
                    break
                }
                end = line.index(after: end)
            }
            guard end < line.endIndex else { throw EditError(description: "\(file):\(row + 1): unterminated string") }
            end = line.index(after: end)
        default:
            while end < line.endIndex, !",}]".contains(line[end]),
                !(line[end] == "#" && end > start && line[line.index(before: end)] == " ")
            {
                end = line.index(after: end)
            }
            while end > start && line[line.index(before: end)] == " " { end = line.index(before: end) }
        }
        lines[row] = String(line[..<start]) + replacement + String(line[end...])
    }

    /// A flow mapping starts with `{` where its mark points.
    private static func isFlow(_ mark: Node.Mark?, in lines: [String], file: String) throws -> Bool {
        let (row, index) = try position(mark, in: lines, file: file)
        return index < lines[row].endIndex && lines[row][index] == "{"
    }

    private static func insertIntoFlow(_ mark: Node.Mark?, entry: String, in lines: inout [String], file: String) throws
    {
        let (row, brace) = try position(mark, in: lines, file: file)
        let line = lines[row]
        guard line[brace] == "{" else { throw EditError(description: "\(file):\(row + 1): expected '{'") }
        let after = line.index(after: brace)
        let rest = line[after...].drop(while: { $0 == " " })
        let separator = rest.first == "}" ? "" : ", "
        lines[row] = String(line[...brace]) + entry + separator + String(line[after...].drop(while: { $0 == " " }))
    }

    /// `key:` followed by nothing (or `~`, `null`): the value is replaced up to a comment or the end of the line.
    private static func replaceAfterKey(_ key: Node, with value: String, in lines: inout [String], file: String)
        throws
    {
        let (row, start) = try position(key.mark, in: lines, file: file)
        let line = lines[row]
        guard let colon = line[start...].firstIndex(of: ":") else {
            throw EditError(description: "\(file):\(row + 1): expected ':' after the environment name")
        }
        let tail = line[line.index(after: colon)...]
        let comment = tail.range(of: " #").map { String(tail[$0.lowerBound...]) } ?? ""
        lines[row] = String(line[...colon]) + " " + value + comment
    }
}
