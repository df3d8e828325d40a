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

    init(from localAddress: String, port: UInt16) throws {
        fd = ConnectingSocket.open(from: localAddress, to: "127.0.0.1", port: port, nonBlocking: false)
        guard fd >= 0 else { throw HTTPClient.ClientError.connect(errno) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
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

    /// Sends a whole request and reads what comes back until the first
    /// answer's headers and a bit of body are in (enough for the checks).
    func exchange(_ request: String) throws -> String {
        guard send(Array(request.utf8)[...]) else { throw HTTPClient.ClientError.closed }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(fd, &chunk, chunk.count, 0)
            if count <= 0 { break }
            received += chunk[0..<count]
            let text = String(decoding: received, as: UTF8.self)
            if let end = text.range(of: "\r\n\r\n"), let length = Self.contentLength(text[..<end.lowerBound]),
               received.count >= text.utf8.distance(from: text.startIndex, to: end.upperBound) + length {
                break
            }
        }
        return String(decoding: received, as: UTF8.self)
    }

    private static func contentLength(_ head: Substring) -> Int? {
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
