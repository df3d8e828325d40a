import Glibc

/// Bytes written straight to a socket when nothing waits in its
/// bufferevent's output: one system call, where the bufferevent would add a
/// write event, wake for it, write and remove the event again. The caller
/// hands what the kernel did not take to the bufferevent, in order.
enum DirectSend {
    /// One non-blocking `sendmsg` of both pieces; the bytes the kernel took
    /// (0 on any error, EAGAIN or a connection not yet made). The bytes then
    /// go to the bufferevent, whose own write fails in turn on a broken
    /// connection (with EPIPE rather than the first error, which this call
    /// consumed) and closes it.
    static func now(_ fd: Int32, _ head: UnsafeRawBufferPointer, _ body: UnsafeRawBufferPointer) -> Int {
        guard fd >= 0 else { return 0 }
        var pieces = (iovec(iov_base: UnsafeMutableRawPointer(mutating: head.baseAddress), iov_len: head.count),
                      iovec(iov_base: UnsafeMutableRawPointer(mutating: body.baseAddress), iov_len: body.count))
        return withUnsafeMutableBytes(of: &pieces) { raw in
            var message = msghdr()
            message.msg_iov = raw.baseAddress!.assumingMemoryBound(to: iovec.self)
            message.msg_iovlen = body.count > 0 ? 2 : 1
            // MSG_NOSIGNAL: a peer gone must not raise SIGPIPE.
            return max(0, sendmsg(fd, &message, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)))
        }
    }
}
