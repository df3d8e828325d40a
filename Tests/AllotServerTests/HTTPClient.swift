import Foundation
import Glibc

/// A blocking HTTP/1.1 client on one keep-alive connection, for tests that
/// need many real connections at once (one per thread). Reads
/// Content-Length and chunked bodies; reconnects when the server closed.
final class HTTPClient {
    struct Response {
        let status: Int
        let headers: [String: String]
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
        var code: String? { json["code"] as? String }
        func header(_ name: String) -> String? { headers[name.lowercased()] }
    }

    let port: UInt16
    private var fd: Int32 = -1
    private var buffer: [UInt8] = []

    init(port: UInt16) { self.port = port }
    deinit { if fd >= 0 { close(fd) } }

    func request(_ method: String, _ path: String, body: String? = nil, headers: [String: String] = [:]) throws -> Response {
        var lastError: Error?
        for _ in 0..<2 {
            do {
                if fd < 0 { try connect() }
                try send(method, path, body: body, headers: headers)
                return try readResponse()
            } catch {
                lastError = error
                reset()
            }
        }
        throw lastError!
    }

    func get(_ path: String, headers: [String: String] = [:]) throws -> Response { try request("GET", path, headers: headers) }

    /// Writes raw bytes and reads one response (for malformed requests).
    func raw(_ bytes: [UInt8]) throws -> Response {
        if fd < 0 { try connect() }
        try writeAll(bytes)
        return try readResponse()
    }

    func reset() {
        if fd >= 0 { close(fd) }
        fd = -1
        buffer.removeAll()
    }

    private func connect() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { close(socketFD); throw ClientError.connect(errno) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
        fd = socketFD
    }

    private func send(_ method: String, _ path: String, body: String?, headers: [String: String]) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let bodyBytes = Array((body ?? "").utf8)
        if body != nil { head += "Content-Type: application/json\r\nContent-Length: \(bodyBytes.count)\r\n" }
        head += "\r\n"
        try writeAll(Array(head.utf8) + bodyBytes)
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw ClientError.closed }
            offset += written
        }
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = recv(fd, &chunk, chunk.count, 0)
        guard count > 0 else { throw count == 0 ? ClientError.closed : ClientError.timeout }
        buffer += chunk[0..<count]
    }

    private func readLine() throws -> String {
        while true {
            if let index = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[..<index], as: UTF8.self).trimmingCharacters(in: .newlines)
                buffer.removeFirst(index + 1)
                return line
            }
            try fill()
        }
    }

    private func readBytes(_ count: Int) throws -> [UInt8] {
        while buffer.count < count { try fill() }
        let bytes = Array(buffer[..<count])
        buffer.removeFirst(count)
        return bytes
    }

    private func readResponse() throws -> Response {
        let statusLine = try readLine()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw ClientError.malformed(statusLine) }
        var headers: [String: String] = [:]
        while true {
            let line = try readLine()
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased() == "chunked" {
            while true {
                let size = Int(try readLine(), radix: 16) ?? 0
                if size == 0 { _ = try readLine(); break }
                body += try readBytes(size)
                _ = try readLine()
            }
        } else if let length = headers["content-length"].flatMap({ Int($0) }) {
            body = try readBytes(length)
        }
        if headers["connection"]?.lowercased() == "close" { reset() }
        return Response(status: status, headers: headers, body: body)
    }

    enum ClientError: Error { case connect(Int32), closed, timeout, malformed(String) }
}
