import EventHTTP
import EventLoops
import Foundation
import Glibc
import Testing

/// A connection reuses its answered exchange for the next request only when
/// nothing else holds it; answers written into the server's lent buffers
/// carry their own bytes only. A real server on a loop, a blocking client.
@Suite(.serialized) struct HTTPExchangeReuseTests {
    /// A loop thread with an HTTPServer whose handler answers with the
    /// request's target, written into the lent body buffer. Targets under
    /// `/held/` are kept by the handler after their answer.
    final class EchoServer: @unchecked Sendable {
        let loop = EventLoop(index: 0)
        let port: UInt16
        private var server: HTTPServer?
        private let lock = NSLock()
        private var held: [HTTPExchange] = []
        private var seen: [ObjectIdentifier] = []
        private let thread: Thread

        init() throws {
            let (fd, port) = try ListeningSocket.open(host: "127.0.0.1", port: 0)
            self.port = port
            let loop = loop
            thread = Thread { loop.run() }
            let ready = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: Error?
            _ = loop.execute { [self] in
                do {
                    server = try HTTPServer(loop: loop, listenerFD: fd, limits: HTTPLimits(),
                                            gate: ConnectionGate(connectionsMax: 16, perAddressMax: 16)) { [self] in answer($0) }
                } catch { failure = error }
                ready.signal()
            }
            thread.start()
            ready.wait()
            if let failure { throw failure }
        }

        private func answer(_ exchange: HTTPExchange) {
            let target = exchange.request?.target ?? ""
            lock.withLock {
                seen.append(ObjectIdentifier(exchange))
                if target.hasPrefix("/held/") { held.append(exchange) }
            }
            exchange.label = target
            exchange.respond(status: 200, contentType: "text/plain") { body in body.append(contentsOf: Array(target.utf8)) }
        }

        var heldExchanges: [HTTPExchange] { lock.withLock { held } }
        var exchangesSeen: [ObjectIdentifier] { lock.withLock { seen } }

        func stop() {
            let done = DispatchSemaphore(value: 0)
            _ = loop.execute { [self] in
                server = nil
                loop.stop()
                done.signal()
            }
            done.wait()
        }
    }

    /// Sends each target as a GET on one keep-alive connection, one after
    /// the other, and returns each answer's body.
    func bodies(of targets: [String], port: UInt16) throws -> [String] {
        let fd = ConnectingSocket.open(from: "127.0.0.1", to: "127.0.0.1", port: port, nonBlocking: false)
        try #require(fd >= 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var bodies: [String] = []
        for target in targets {
            let request = Array("GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
            try #require(request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } == request.count)
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4_096)
            while true {
                let text = String(decoding: received, as: UTF8.self)
                if let end = text.range(of: "\r\n\r\n"),
                   let length = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.hasPrefix("Content-Length: ") })
                       .flatMap({ Int($0.dropFirst("Content-Length: ".count)) }),
                   text.utf8.count >= text[..<end.upperBound].utf8.count + length {
                    bodies.append(String(text[end.upperBound...]))
                    break
                }
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                try #require(count > 0, "answer to \(target)")
                received += buffer[..<count]
            }
        }
        return bodies
    }

    @Test func anExchangeSomeoneStillHoldsIsNotReusedAndKeepsItsState() throws {
        let server = try EchoServer()
        defer { server.stop() }
        let targets = ["/held/first-and-longest", "/held/2", "/held/third"]
        #expect(try bodies(of: targets, port: server.port) == targets)
        let held = server.heldExchanges
        #expect(held.count == 3)
        #expect(Set(held.map(ObjectIdentifier.init)).count == 3)
        // Each kept its own request's state: nothing was reset under it.
        #expect(held.map(\.label) == targets)
        #expect(held.allSatisfy { $0.isAnswered })
    }

    @Test func anExchangeNobodyHoldsServesTheNextRequestWithItsOwnBytes() throws {
        let server = try EchoServer()
        defer { server.stop() }
        // Longest first: a reused buffer that kept an earlier answer's tail
        // would show here.
        let targets = ["/free/a-long-target-to-start-with", "/free/b", "/free/c-medium", "/free/d"]
        #expect(try bodies(of: targets, port: server.port) == targets)
        #expect(Set(server.exchangesSeen).count == 1)
    }
}
