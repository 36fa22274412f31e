import Foundation

/// A fresh directory under the system temp dir, removed when the value is released.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(_ prefix: String = "tide-test") throws {
        let base = FileManager.default.temporaryDirectory.path
        let path = (base as NSString).appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        self.path = path
    }

    public func appending(_ component: String) -> String {
        (path as NSString).appendingPathComponent(component)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The result of running a process to completion.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String

    /// stdout and stderr together, for assertions that do not care which stream.
    public var combined: String { standardOutput + standardError }
}

/// Runs a program (no shell) and collects its output. Test helper only: Tide itself uses swift-subprocess.
///
/// posix_spawn and waitpid rather than Foundation's Process: with several processes started at once from
/// different threads, Process can miss a child's exit and wait forever (the child stays a zombie).
@discardableResult
/// From async code: the child is waited for on a thread of its own, never on one of the cooperative pool's (two
/// on this machine — a test blocking one for a child's lifetime stalls every other test's awaits).
public func runProcess(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
    input: String? = nil
) async throws -> ProcessOutput {
    try await detached {
        try runProcessBlocking(executable, arguments, in: directory, environment: environment, input: input)
    }
}

/// From synchronous code (fixtures' setup, `detached` work): runs the child and waits for it on this thread.
public func runProcess(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
    input: String? = nil
) throws -> ProcessOutput {
    try runProcessBlocking(executable, arguments, in: directory, environment: environment, input: input)
}

func runProcessBlocking(
    _ executable: String, _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:],
    input: String? = nil
) throws -> ProcessOutput {
    func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw FixtureError("pipe: errno \(errno)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
    let stdin = try makePipe()
    let stdout = try makePipe()
    let stderr = try makePipe()
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdin.read, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout.write, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr.write, 2)
    var pid: pid_t = 0
    let spawned = spawn(&pid, executable, arguments, in: directory, environment: environment, actions: &actions)
    for fd in [stdin.read, stdout.write, stderr.write] { close(fd) }
    guard spawned == 0 else {
        for fd in [stdin.write, stdout.read, stderr.read] { close(fd) }
        throw FixtureError("cannot run \(executable): \(String(cString: strerror(spawned)))")
    }
    let writer = FileHandle(fileDescriptor: stdin.write, closeOnDealloc: true)
    if let input { try? writer.write(contentsOf: Data(input.utf8)) }
    try? writer.close()
    // Read both pipes concurrently so neither fills up and blocks the child.
    let errData = LockedBox(Data())
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async {
        errData.set(FileHandle(fileDescriptor: stderr.read, closeOnDealloc: true).readDataToEndOfFile())
        group.leave()
    }
    let outData = FileHandle(fileDescriptor: stdout.read, closeOnDealloc: true).readDataToEndOfFile()
    group.wait()
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let exited = (status & 0x7f) == 0
    return ProcessOutput(
        status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f),
        standardOutput: String(decoding: outData, as: UTF8.self),
        standardError: String(decoding: errData.get(), as: UTF8.self))
}

/// posix_spawn of `executable` with `arguments` in `directory` (through coreutils' `env -C`:
/// posix_spawn_file_actions_addchdir_np is not in Glibc's overlay), with this process's environment plus
/// `environment`, nothing inherited but what `actions` sets up. Returns posix_spawn's result.
func spawn(
    _ pid: inout pid_t, _ executable: String, _ arguments: [String], in directory: String?,
    environment: [String: String], actions: inout posix_spawn_file_actions_t
) -> Int32 {
    closeInheritedDescriptors(&actions)
    let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0.key)=\($0.value)" }
    let command = directory.map { ["/usr/bin/env", "-C", $0, executable] } ?? [executable]
    let argv = (command + arguments).map { strdup($0) } + [nil]
    let envp = variables.map { strdup($0) } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    return posix_spawn(&pid, command[0], &actions, nil, argv, envp)
}

/// The child gets stdin, stdout and stderr and nothing else of the test process: SwiftNIO opens its sockets
/// without close-on-exec, and a child holding a copy of a database connection keeps it open after the test
/// closed it (a `psql` started while a session holds an advisory lock would keep that lock for as long as it
/// runs). glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34) is not in Swift's Glibc module: looked up.
func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
    guard let addCloseFrom = addCloseFrom else { return }
    _ = addCloseFrom(&actions, 3)
}

private let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(
        symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
}()

/// A value behind a lock, for handing results between threads in test helpers.
public final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    public init(_ value: Value) {
        self.value = value
    }

    public func get() -> Value { lock.withLock { value } }

    public func set(_ newValue: Value) { lock.withLock { value = newValue } }

    public func update<T>(_ body: (inout Value) -> T) -> T { lock.withLock { body(&value) } }
}
