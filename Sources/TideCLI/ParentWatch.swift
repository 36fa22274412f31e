import Foundation

/// Ends an internal child (`tide git-check`, `tide git-remote`) when the Tide that started it is gone. The child runs
/// in a session of its own (so a deadline can kill its whole group), which a kill of its parent does not reach:
/// without this, a reader spinning on a damaged object would spin on after `tide status` was killed, and a push
/// would go on unowned. A thread of its own, since the main one may be stuck inside libgit2.
enum ParentWatch {
    static func start() {
        // The parent says who it is: one that died before this line ran would otherwise be taken for init.
        let parent = ProcessInfo.processInfo.environment["TIDE_PARENT_PID"].flatMap { Int32($0) } ?? getppid()
        if getppid() != parent { _exit(3) }
        let watcher = Thread {
            while true {
                Thread.sleep(forTimeInterval: 0.5)
                if getppid() != parent { _exit(3) }
            }
        }
        watcher.start()
    }
}
