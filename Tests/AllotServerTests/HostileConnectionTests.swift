import EventHTTP
import Foundation
import Glibc
import XCTest

/// Connection caps and the request deadline (issue 5, hostile HTTP): many
/// connections from one address, or from everywhere, and requests that
/// trickle in, must not starve real clients. The attackers connect from
/// other loopback addresses (127.0.0.2 and up) so that the real clients on
/// 127.0.0.1 have an address of their own.
final class HostileConnectionTests: XCTestCase {
    func testConnectionsOverTheAddressCapAreAnswered503AndOtherAddressesAreServed() throws {
        let stack = try LiveStack { $0.connectionsPerAddressMax = 8 }
        defer { stack.shutdown() }
        let held = try (0..<8).map { _ in try RawConnection(from: "127.0.0.2", port: stack.port) }
        Thread.sleep(forTimeInterval: 0.2)

        let refused = try RawConnection(from: "127.0.0.2", port: stack.port)
        let answer = try refused.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 503"), answer)
        XCTAssertTrue(answer.contains("application/problem+json"), answer)
        XCTAssertTrue(answer.contains(#""code":"unavailable""#), answer)
        XCTAssertTrue(answer.lowercased().contains("connection: close"), answer)
        XCTAssertTrue(refused.closedByPeer(withinSeconds: 2))

        XCTAssertEqual(try stack.client().get("/healthz").status, 200, "another address is still served")

        held.forEach { $0.close() }
        Thread.sleep(forTimeInterval: 0.2)
        let again = try RawConnection(from: "127.0.0.2", port: stack.port)
        XCTAssertTrue(try again.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200"),
                      "closed connections give their places back")
    }

    func testConnectionsOverTheServerCapAreAnswered503() throws {
        let stack = try LiveStack { $0.connectionsMax = 6 }
        defer { stack.shutdown() }
        let held = try (0..<6).map { try RawConnection(from: "127.0.0.\(2 + $0)", port: stack.port) }
        Thread.sleep(forTimeInterval: 0.2)

        let response = try stack.client().get("/healthz")
        XCTAssertEqual(response.status, 503)
        XCTAssertEqual(response.code, "unavailable")
        XCTAssertEqual(response.header("Retry-After"), "1")

        held[0].close()
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(try stack.client().get("/healthz").status, 200)
    }

    func testARequestTricklingInIsCutOffAtTheDeadline() throws {
        let stack = try LiveStack { $0.requestDeadlineSeconds = 1 }
        defer { stack.shutdown() }
        // An idle keep-alive connection is not a late request: the deadline
        // runs from a request's first byte.
        let idle = try RawConnection(from: "127.0.0.1", port: stack.port)
        Thread.sleep(forTimeInterval: 1.6)
        XCTAssertTrue(try idle.exchange("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200"))

        let slow = try RawConnection(from: "127.0.0.2", port: stack.port)
        let request = Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: \(String(repeating: "a", count: 60))\r\n\r\n".utf8)
        let started = Date()
        var sent = 0
        while sent < request.count, slow.send(request[sent...sent]) {
            sent += 1
            Thread.sleep(forTimeInterval: 0.1)  // 10 bytes a second: never idle, never done
        }
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertLessThan(sent, request.count, "the whole request got through")
        XCTAssertTrue(slow.closedByPeer(withinSeconds: 2))
        XCTAssertGreaterThanOrEqual(elapsed, 0.9, "cut off before its deadline")
        XCTAssertLessThan(elapsed, 3.0, "cut off long after its deadline")
    }

    /// Each gets a clear error or a closed connection, never a crash, a
    /// stall or unbounded memory; the server serves on after every one.
    func testHostileRequestsGetAnErrorOrAClosedConnection() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("h1", slots: 1, capacity: 10)
        let bearer = "Authorization: Bearer \(LiveStack.adminToken)\r\n"
        // Each is answered with its status, as problem+json, and the
        // connection is closed after those the HTTP layer refuses.
        let hostile: [(String, Int, [UInt8])] = [
            ("headers over 8 KiB", 431, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 9_000))\r\n\r\n".utf8)),
            ("a body over 4 MiB", 413, Array("PUT /v1/admin/campaigns/h1/slots HTTP/1.1\r\nHost: x\r\n\(bearer)Content-Length: 5000000\r\n\r\n".utf8)
                + [UInt8](repeating: UInt8(ascii: "["), count: 5_000_000)),
            ("a chunked body over 4 MiB", 413, Array("PUT /v1/admin/campaigns/h1/slots HTTP/1.1\r\nHost: x\r\n\(bearer)Transfer-Encoding: chunked\r\n\r\n".utf8)
                + Array((String(repeating: "100000\r\n" + String(repeating: "[", count: 0x100000) + "\r\n", count: 5)).utf8)),
            ("a 2 MB JSON array of numbers", 400, { () -> [UInt8] in
                let body = "{\"slots\":[" + String(repeating: "1,", count: 1_000_000) + "1]}"
                return Array("PUT /v1/admin/campaigns/h1/slots HTTP/1.1\r\nHost: x\r\n\(bearer)Content-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)
            }()),
            ("a capacity out of range", 400, Array("PATCH /v1/admin/campaigns/h1/slots/s0 HTTP/1.1\r\nHost: x\r\n\(bearer)Content-Length: 23\r\n\r\n{\"capacity\":1e300000}  ".utf8)),
            ("a limit past Int64", 400, Array("PATCH /v1/admin/campaigns/h1 HTTP/1.1\r\nHost: x\r\n\(bearer)Content-Length: 43\r\n\r\n{\"per_citizen_limit\":99999999999999999999}  ".utf8)),
            ("a header line without a colon", 400, Array("GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n".utf8)),
            ("a NUL in the request target", 400, Array("GET /v1/campaigns/\u{0}x HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("TRACE", 405, Array("TRACE /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("CONNECT", 501, Array("CONNECT 127.0.0.1:6379 HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("an unknown method", 405, Array("BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
            ("HTTP/2.0 in the request line", 505, Array("GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n".utf8)),
        ]
        for (what, expected, request) in hostile {
            let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
            _ = connection.send(request[...])
            let answer = connection.readAnswer()
            let status = Int(answer.split(separator: " ").dropFirst().first ?? "") ?? 0
            XCTAssertEqual(status, expected, "\(what): \(answer.prefix(200))")
            XCTAssertTrue(answer.contains("Content-Type: application/problem+json"), "\(what): \(answer.prefix(200))")
            XCTAssertEqual(try stack.client().get("/healthz").status, 200, "after \(what)")
        }
        // Pipelined: two good requests, then garbage. Both are answered,
        // then the connection is closed.
        let pipelined = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = pipelined.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\u{1}\u{2}\u{3} garbage\r\n\r\n".utf8)[...])
        XCTAssertTrue(pipelined.closedByPeer(withinSeconds: 5))
        XCTAssertEqual(try stack.client().get("/healthz").status, 200)
        // Nothing changed.
        let stats = try stack.stats("h1")
        XCTAssertEqual(stats["capacity"] as? Int, 10)
        XCTAssertEqual(try stack.client().get("/v1/campaigns/h1").json["per_citizen_limit"] as? Int, 1)
    }

    func testTwoThousandSlowConnectionsFromOneAddressDoNotStarveOthers() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        var slow: [RawConnection] = []
        for _ in 0..<2_000 {
            guard let connection = try? RawConnection(from: "127.0.0.2", port: stack.port) else { continue }
            _ = connection.send(Array("GET /hea".utf8)[...])
            slow.append(connection)
        }
        XCTAssertGreaterThan(slow.count, 1_000, "the attacker could not even connect")

        let served = Locked(0)
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                let client = stack.client()
                for _ in 0..<25 where (try? client.get("/healthz").status) == 200 { served.withLock { $0 += 1 } }
                group.leave()
            }
        }
        XCTAssertEqual(group.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(served.withLock { $0 }, 200)
        // At most the address cap of them is still open; the rest were
        // refused and closed.
        Thread.sleep(forTimeInterval: 1.5)
        let stillOpen = slow.filter { !$0.closedByPeer(withinSeconds: 0) }.count
        XCTAssertLessThanOrEqual(stillOpen, 128)
        slow.forEach { $0.close() }
    }
}

/// A blocking TCP connection from a chosen local address, writing raw bytes.
final class RawConnection {
    private var fd: Int32
    /// Bytes received past the last answer read.
    private var pending: [UInt8] = []

    init(from localAddress: String, port: UInt16) throws {
        fd = ConnectingSocket.open(from: localAddress, to: "127.0.0.1", port: port, nonBlocking: false)
        guard fd >= 0 else { throw HTTPClient.ClientError.connect(errno) }
        var timeout = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close() }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Sends bytes; false once the peer has closed.
    func send(_ bytes: ArraySlice<UInt8>) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Sends a whole request and reads its answer.
    func exchange(_ request: String) throws -> String {
        guard send(Array(request.utf8)[...]) else { throw HTTPClient.ClientError.closed }
        return readAnswer()
    }

    /// What the server sends until one whole answer is in (by its
    /// Content-Length), it closes, or 15 s pass in silence.
    /// Reads one answer (head and Content-Length body); what comes after
    /// it is kept for the next read. Without a length, reads to the close.
    func readAnswer() -> String {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let text = String(decoding: pending, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n"), let length = Self.contentLength(text[..<end.lowerBound]) {
                let total = text.utf8.distance(from: text.startIndex, to: end.upperBound) + length
                if pending.count >= total {
                    defer { pending.removeFirst(total) }
                    return String(decoding: pending.prefix(total), as: UTF8.self)
                }
            }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            pending += chunk[0..<count]
        }
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Reads up to the end of one answer's head (no body: a HEAD answer,
    /// or 100 Continue).
    func readHead() -> String {
        var received: [UInt8] = []
        var byte: UInt8 = 0
        while !pending.isEmpty || recv(fd, &byte, 1, 0) == 1 {
            if !pending.isEmpty { byte = pending.removeFirst() }
            received.append(byte)
            if received.count >= 4, received.suffix(4) == [13, 10, 13, 10] { break }
        }
        return String(decoding: received, as: UTF8.self)
    }

    func shutdownWrites() { shutdown(fd, Int32(SHUT_WR)) }

    /// Everything received until the server closes or the time is up.
    func readAll(withinSeconds seconds: Double) -> String {
        var received = pending
        pending.removeAll()
        let deadline = Date().addingTimeInterval(seconds)
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while Date() < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { break }
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
        }
        return String(decoding: received, as: UTF8.self)
    }

    static func contentLength(_ head: Substring) -> Int? {
        for line in head.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
            return Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// True when the server has closed the connection (reads end or reset)
    /// within the time given; whatever it sent first is skipped.
    func closedByPeer(withinSeconds seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var chunk = [UInt8](repeating: 0, count: 4096)
        repeat {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = max(0, Int32(deadline.timeIntervalSinceNow * 1000))
            guard poll(&poller, 1, remaining) > 0 else { return false }
            let count = recv(fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
            if count == 0 || (count < 0 && errno != EAGAIN) { return true }
        } while Date() < deadline
        return false
    }
}
