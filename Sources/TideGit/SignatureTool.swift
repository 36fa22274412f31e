import Foundation

/// Runs `ssh-keygen` or `gpg` for signing and verifying commits: no shell, argv as given, input from an unlinked
/// temporary file, output to temporary files (never pipes: a `gpg-agent` that gpg starts inherits them and
/// would hold a reader open for ever), a deadline after which the tool is killed.
enum SignatureTool {
    struct Output {
        var status: Int32
        var output: String
        var error: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(
        _ program: String, _ arguments: [String], input: [UInt8] = [], environment: [String: String] = [:],
        timeout: Double = 30
    ) throws -> Output {
        let scratch = try TemporaryFiles()
        defer { scratch.remove() }
        let inputPath = try scratch.write("input", input)
        let outputPath = scratch.path("output")
        let errorPath = scratch.path("error")

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, inputPath, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value }
        // Never ask on a terminal: a key that needs a passphrase fails instead of waiting.
        variables["SSH_ASKPASS_REQUIRE"] = "never"
        let argv = ["/usr/bin/env", program] + arguments
        let envp = variables.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let spawned = withCStrings(argv) { cArgv in
            withCStrings(envp) { cEnvp in posix_spawn(&pid, "/usr/bin/env", &actions, nil, cArgv, cEnvp) }
        }
        guard spawned == 0 else {
            throw Failure(description: "cannot start \(program): \(String(cString: strerror(spawned)))")
        }
        let deadline = Date().addingTimeInterval(timeout)
        var raw: Int32 = 0
        while true {
            let waited = waitpid(pid, &raw, WNOHANG)
            if waited == pid { break }
            if waited < 0 && errno != EINTR { throw Failure(description: "\(program): waitpid failed") }
            if Date() > deadline {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &raw, 0)
                throw Failure(description: "\(program) did not finish within \(Int(timeout)) s")
            }
            usleep(5_000)
        }
        let status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        return Output(status: status, output: scratch.read("output"), error: scratch.read("error"))
    }

    private static func withCStrings<T>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> T) -> T {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { for pointer in pointers { free(pointer) } }
        pointers.append(nil)
        return body(pointers)
    }
}

/// A private temporary directory (mode 700) for a tool's files; removed with everything in it.
struct TemporaryFiles {
    let directory: String

    init() throws {
        var template = Array((NSTemporaryDirectory() + "/tide-sign.XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw SignatureTool.Failure(description: "cannot make a temporary directory")
        }
        directory = String(cString: made)
    }

    func path(_ name: String) -> String { directory + "/" + name }

    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = path(name)
        guard
            FileManager.default.createFile(atPath: path, contents: Data(bytes), attributes: [.posixPermissions: 0o600])
        else { throw SignatureTool.Failure(description: "cannot write \(path)") }
        return path
    }

    func read(_ name: String) -> String {
        (FileManager.default.contents(atPath: path(name))).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
