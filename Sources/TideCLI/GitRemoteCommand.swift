import ArgumentParser
import Foundation
import TideGit
import TideService

/// `tide git-remote`: the child process a fetch or push runs in (see `RemoteOperation`). Not for people: it reads
/// one JSON request on stdin and answers one JSON line on stdout.
struct GitRemoteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "git-remote", abstract: "Run one fetch or push for tide run (internal).", shouldDisplay: false)

    func run() throws {
        ParentWatch.start()
        Repository.trustMirrorOwners()
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let answer: RemoteOperation.Answer
        do {
            answer = try JSONDecoder().decode(RemoteOperation.self, from: input).perform()
        } catch {
            answer = .init(status: .failed, message: "git-remote: cannot read the request: \(error)")
        }
        print(String(decoding: try JSONEncoder().encode(answer), as: UTF8.self))
    }
}
