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
