import Glibc

/// Names the calling thread as the kernel sees it (`/proc/…/task/…/comm`,
/// `top -H`, `perf`), so CPU can be told apart per thread: Foundation's
/// `Thread.name` does not reach the kernel on Linux, and glibc's
/// `pthread_setname_np` is not visible to Swift. At most 15 bytes; a
/// failure leaves the old name (nothing depends on it).
public func nameCurrentThread(_ name: String) {
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
}
