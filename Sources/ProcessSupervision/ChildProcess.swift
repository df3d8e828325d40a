import Foundation
import Glibc
import Synchronization

/// A child process started with posix_spawn and reaped with waitpid (the
/// Foundation `Process` of this toolchain can hang in `waitUntilExit`).
public final class ChildProcess: Sendable {
    public let pid: pid_t
    private let exitStatus = Mutex<Int32?>(nil)
    private let exited = DispatchSemaphore(value: 0)

    /// Starts `path` with `arguments`; `onExit` runs on a waiter thread when
    /// the child ends, with its wait status. With `outputPath`, the child's
    /// standard output and error go to that file instead of ours.
    public init(path: String, arguments: [String], outputPath: String? = nil,
                onExit: (@Sendable (Int32) -> Void)? = nil) throws {
        var spawned: pid_t = 0
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // A child inherits the spawning thread's blocked signals and ignored
        // dispositions (dispatch threads block them all): start it clean, or
        // it would never see SIGTERM.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for number in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGCHLD] { sigaddset(&defaults, number) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        // Its own process group: a Ctrl-C at the terminal reaches only us,
        // and we stop the child when shutdown order says (after the
        // persister has drained).
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let outputPath {
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        let status = posix_spawn(&spawned, path, &actions, &attributes, argv, environ)
        guard status == 0 else { throw ChildProcessError(path: path, errno: status) }
        let pid = spawned
        self.pid = pid
        let thread = Thread { [self] in
            var waitStatus: Int32 = 0
            while waitpid(pid, &waitStatus, 0) < 0 && errno == EINTR {}
            exitStatus.withLock { $0 = waitStatus }
            exited.signal()
            onExit?(waitStatus)
        }
        thread.name = "allot-child-\(pid)"
        thread.start()
    }

    public var isRunning: Bool { exitStatus.withLock { $0 == nil } }

    /// The exit code once it has ended normally (nil while running, or after a signal).
    public var exitCode: Int32? {
        exitStatus.withLock { status in status.flatMap { $0 & 0x7F == 0 ? ($0 >> 8) & 0xFF : nil } }
    }

    public func signal(_ number: Int32) {
        if isRunning { kill(pid, number) }
    }

    /// Waits for the child to end; true if it did within the timeout.
    @discardableResult
    public func wait(timeoutMillis: Int = 30_000) -> Bool {
        guard exited.wait(timeout: .now() + .milliseconds(timeoutMillis)) == .success else { return false }
        exited.signal()  // later waiters return at once too
        return true
    }

    /// SIGTERM, then SIGKILL if it has not ended in `graceMillis`.
    public func stop(graceMillis: Int = 10_000) {
        signal(SIGTERM)
        if !wait(timeoutMillis: graceMillis) {
            signal(SIGKILL)
            wait()
        }
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    let path: String
    let errno: Int32
    public var description: String { "cannot start \(path): \(String(cString: strerror(errno)))" }
}
