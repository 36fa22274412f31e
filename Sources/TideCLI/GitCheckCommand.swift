import ArgumentParser
import Foundation
import TideEngine
import TideExecutors
import TideGit
import TideManifest

/// `tide git-check`: the child process that reads a revision's objects before Tide does (see `RevisionReadCheck`).
/// Not for people. Blob ids already read are given on stdin, one per line; each object is named on stderr before
/// it is read, so when libgit2 crashes or hangs on one, the last line says which.
struct GitCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "git-check", abstract: "Read a revision's objects for tide (internal).", shouldDisplay: false)

    @Option var repository: String
    @Option var commit: String
    @Option var root: String = ""

    func run() throws {
        ParentWatch.start()
        guard let id = ObjectID(hex: commit) else { throw ValidationError("--commit: not an object id") }
        let known = Set(
            String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self).split(separator: "\n")
                .compactMap { ObjectID(hex: String($0)) })
        // The parent opened this repository already (its ownership was checked there, or it is Tide's mirror).
        Repository.trustMirrorOwners()
        let repo = try Repository.open(at: repository)
        func reading(_ what: String) { FileHandle.standardError.write(Data("reading \(what)\n".utf8)) }
        reading("commit \(id.hex)")
        _ = try repo.commit(id)
        reading("the tree of \(id.hex) under '\(root)'")
        for file in try repo.files(at: id, under: root)
        where !known.contains(file.blob) && !file.isSymlink && !file.isSubmodule {
            guard ManifestLoader.isManifestPath(file.path) else { continue }
            reading("blob \(file.blob.hex) (\(file.path))")
            _ = try repo.blob(file.blob)
        }
        reading("the history of \(id.hex)")
        _ = try repo.commits(from: id, limit: 1_000)
        print("ok")
    }
}
