import ArgumentParser
import Foundation
import TideEngine
import TideExecutors
import TideGit
import TideManifest
import TideState

/// Options every command that reads the config repo or the state shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The config repo: a work tree or a bare repository.")
    var repo: String = "."

    @Option(name: .long, help: "The branch to track (default: the branch HEAD points to).")
    var branch: String?

    @Option(name: .long, help: "The manifest root inside the repo (default: the repo root).")
    var path: String = ""

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The state store: an SQLite file path (default: $TIDE_STATE, else tide/state.sqlite in the repo's git directory).",
            valueName: "path"))
    var state: String?

    func validate() throws {
        if let state, state.hasPrefix("postgres://") || state.hasPrefix("postgresql://") {
            throw ValidationError("--state: PostgreSQL state stores are not supported by this version of tide yet")
        }
        if path.split(separator: "/").contains("..") {
            throw ValidationError("--path: must stay inside the repository (no '..')")
        }
    }

    var manifestRoot: String {
        path.trimmingCharacters(in: CharacterSet(charactersIn: "/")).replacingOccurrences(of: "./", with: "")
    }

    func openRepository() throws -> Repository {
        do {
            return try Repository.open(at: repo)
        } catch {
            throw ReportedFailure(message: "tide: error: cannot open config repo '\(repo)': \(error)")
        }
    }

    func statePath(for repository: Repository?) -> String {
        if let state { return state }
        if let env = ProcessInfo.processInfo.environment["TIDE_STATE"], !env.isEmpty { return env }
        let base = repository?.gitDirectory ?? (repo as NSString).appendingPathComponent(".git")
        return (base as NSString).appendingPathComponent("tide/state.sqlite")
    }

    func openStore(for repository: Repository?) throws -> SQLiteStateStore {
        try SQLiteStateStore(path: statePath(for: repository))
    }

    func reconciler(concurrency: Int = 16) throws -> Reconciler {
        let repository = try openRepository()
        let store = try openStore(for: repository)
        let workingDirectory = repository.workingDirectory ?? FileManager.default.currentDirectoryPath
        return Reconciler(
            repository: repository, branch: branch, root: manifestRoot, store: store,
            executors: DefaultExecutorFactory(workingDirectory: workingDirectory), concurrency: concurrency)
    }
}

/// JSON output: sorted keys, ISO 8601 dates, pretty-printed.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .iso8601
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

func iso(_ date: Date?) -> String {
    guard let date else { return "-" }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
}

/// A plain-text table with left-aligned columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
    var widths = header.map(\.count)
    for row in rows {
        for (index, cell) in row.enumerated() where index < widths.count {
            widths[index] = max(widths[index], cell.count)
        }
    }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { index, cell in
            index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
