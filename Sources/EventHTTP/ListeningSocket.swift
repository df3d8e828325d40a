import Glibc

public struct SocketError: Error, CustomStringConvertible {
    public let call: String
    public let errno: Int32
    public var description: String { "\(call): \(String(cString: strerror(errno)))" }
}

/// A TCP listener bound with SO_REUSEPORT, so each loop owns one and the
/// kernel spreads new connections over the loops.
public enum ListeningSocket {
    public static let backlogConnectionsMax: Int32 = 4096

    /// Opens a non-blocking listener on `host:port` (port 0: any free port;
    /// further listeners then pass the port the first one got).
    public static func open(host: String, port: UInt16) throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(call: "socket", errno: errno) }
        do {
            var one: Int32 = 1
            try check("setsockopt(SO_REUSEADDR)", setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4))
            try check("setsockopt(SO_REUSEPORT)", setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4))
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &address.sin_addr) == 1 else {
                throw SocketError(call: "inet_pton(\(host))", errno: EINVAL)
            }
            try withUnsafePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try check("bind", bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)))
                }
            }
            try check("listen", listen(fd, backlogConnectionsMax))
            return (fd, try boundPort(fd))
        } catch {
            close(fd)
            throw error
        }
    }

    static func boundPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try check("getsockname", getsockname(fd, $0, &length))
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    static func check(_ call: String, _ result: Int32) throws {
        if result != 0 { throw SocketError(call: call, errno: errno) }
    }
}

/// A TCP client socket from a chosen local address: load and attack
/// clients that must look like other machines (127.0.0.2, …) to the
/// server's per-address limits.
public enum ConnectingSocket {
    /// Binds to `localAddress` and connects to `host:port` (IPv4 literals).
    /// Non-blocking, the connect may still be in progress. Returns the
    /// descriptor, or -1 with `errno` set.
    public static func open(from localAddress: String, to host: String, port: UInt16, nonBlocking: Bool) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0)
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { return -1 }
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(localAddress)
        var remote = sockaddr_in()
        remote.sin_family = sa_family_t(AF_INET)
        remote.sin_port = port.bigEndian
        remote.sin_addr.s_addr = inet_addr(host)
        let bound = withUnsafePointer(to: &local) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }
        let connected = bound == 0 && withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) }
        } == 0
        guard connected || (nonBlocking && bound == 0 && errno == EINPROGRESS) else {
            let failure = errno
            close(fd)
            errno = failure
            return -1
        }
        return fd
    }
}
