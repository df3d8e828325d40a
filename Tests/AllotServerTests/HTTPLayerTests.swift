import Foundation
import Testing

/// The HTTP/1.1 layer as clients meet it: HEAD, 405 with Allow, 100
/// Continue, pipelining, HTTP/1.0, a client that half-closes.
@Suite(.serialized) struct HTTPLayerTests {
    static func status(_ answer: String) -> Int { Int(answer.split(separator: " ").dropFirst().first ?? "") ?? 0 }

    @Test func headGivesTheGetHeadersWithoutABodyAndKeepsTheConnection() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("hd", slots: 2, capacity: 5)
        let get = try stack.client().get("/v1/campaigns/hd/slots")
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array("HEAD /v1/campaigns/hd/slots HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...])
        let head = connection.readHead()
        #expect(Self.status(head) == 200)
        #expect(RawConnection.contentLength(Substring(head)) == get.body.count)
        // No body came: the next answer on the connection is the next request's.
        _ = connection.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...])
        let next = connection.readAnswer()
        #expect(Self.status(next) == 200)
        #expect(next.hasSuffix("{\"status\":\"ok\"}"))
    }

    @Test func aMethodAPathDoesNotTakeIs405WithAllow() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        for (request, allow) in [("TRACE /healthz", "GET, HEAD"), ("OPTIONS /v1/campaigns", "GET, HEAD"),
                                 ("PUT /v1/reservations/01KB1S6W2Q0000000000000000", "GET, HEAD, DELETE"),
                                 ("GET /v1/admin/campaigns", "POST"),
                                 // Methods the parser does not know: still the path's answer.
                                 ("QUERY /healthz", "GET, HEAD"), ("BREW /v1/campaigns/x", "GET, HEAD")] {
            let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
            _ = connection.send(Array("\(request) HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".utf8)[...])
            let answer = connection.readAnswer()
            #expect(Self.status(answer) == 405, "\(request)")
            #expect(answer.contains("Allow: \(allow)\r\n"), "\(request): \(answer)")
            #expect(answer.contains("Content-Type: application/problem+json"), "\(request)")
        }
    }

    @Test func anUnknownMethodOnAnUnknownPathIs404AndGarbageIs501() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        for (request, status) in [("BREW /nowhere HTTP/1.1\r\nHost: x\r\n\r\n", 404), ("\u{1}\u{2}\u{3}\r\n\r\n", 501)] {
            let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
            _ = connection.send(Array(request.utf8)[...])
            let answer = connection.readAnswer()
            #expect(Self.status(answer) == status, "\(request)")
            #expect(answer.contains("Content-Type: application/problem+json"))
            #expect(connection.closedByPeer(withinSeconds: 2))
        }
    }

    @Test func aClientThatExpectsContinueIsToldToGoOn() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("ec", slots: 1, capacity: 5)
        let sites = (0..<20).map { #"{"id":"site-\#($0)","name":"Site \#($0)","address":"\#($0) Long Road, Some Town"}"# }
        let body = #"{"sites":[\#(sites.joined(separator: ","))]}"#
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array(("PUT /v1/admin/campaigns/ec/sites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(LiveStack.adminToken)\r\n"
                                   + "Content-Length: \(body.utf8.count)\r\nExpect: 100-continue\r\n\r\n").utf8)[...])
        #expect(connection.readHead() == "HTTP/1.1 100 Continue\r\n\r\n")
        _ = connection.send(Array(body.utf8)[...])
        #expect(Self.status(connection.readAnswer()) == 200)
        #expect(try stack.client().get("/v1/campaigns/ec/sites").json["sites"].map { ($0 as? [Any])?.count } == 21)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("pp", slots: 1, capacity: 5)
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array(("GET /v1/campaigns/pp HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/campaigns/nope HTTP/1.1\r\nHost: x\r\n\r\n"
                                   + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").utf8)[...])
        let answers = (0..<3).map { _ in connection.readAnswer() }
        #expect(answers.map(Self.status) == [200, 404, 200])
        #expect(answers[0].contains("\"id\":\"pp\""))
        #expect(answers[2].hasSuffix("{\"status\":\"ok\"}"))
    }

    @Test func http10IsAnsweredAndClosedAndAHalfClosedClientStillGetsItsAnswer() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let old = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = old.send(Array("GET /healthz HTTP/1.0\r\n\r\n".utf8)[...])
        let answer = old.readAnswer()
        #expect(Self.status(answer) == 200 && answer.contains("Connection: close\r\n"))
        #expect(old.closedByPeer(withinSeconds: 2))
        let halfClosed = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = halfClosed.send(Array("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...])
        halfClosed.shutdownWrites()
        #expect(Self.status(halfClosed.readAnswer()) == 200)
        #expect(halfClosed.closedByPeer(withinSeconds: 2))
    }

    /// A client that closes its side while its answer is still being made
    /// (a reservation waits for Redis) gets the answer, and the connection
    /// is closed once it is out, not left to the idle sweep (30 s).
    @Test func aClientHalfClosedDuringAnAsynchronousAnswerIsClosedAfterIt() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("halfclose", capacity: 100)
        for citizen in 0..<5 {
            let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
            let body = #"{"citizen_id":"hc-\#(citizen)","slot_id":"s0"}"#
            _ = connection.send(Array("POST /v1/campaigns/halfclose/reservations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8)[...])
            connection.shutdownWrites()
            #expect(Self.status(connection.readAnswer()) == 201)
            #expect(connection.closedByPeer(withinSeconds: 2))
        }
    }

    /// A client that pipelines and does not read is answered only as fast
    /// as it reads: the server stops reading its requests while answers wait
    /// (past 64 KiB), instead of queueing every answer in memory.
    @Test func pipeliningWithoutReadingIsAnsweredOnlyAsFastAsItReads() throws {
        let stack = try LiveStack(threads: 1)
        defer { stack.shutdown() }
        func answered() throws -> Int {
            let text = try stack.client().get("/metrics").text
            let line = text.split(separator: "\n").first { $0.hasPrefix(#"allot_http_requests_total{route="metrics",status="200"}"#) }
            return Int(line?.split(separator: " ").last ?? "") ?? 0
        }
        let count = 8_000  // answers of several KiB each: tens of MB if all were made
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        let one = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        nonisolated(unsafe) let writer = connection  // only this thread writes; the test never reads
        let sender = Thread { _ = writer.send(Array((0..<count).map { _ in one }.joined())[...]) }
        sender.start()
        Thread.sleep(forTimeInterval: 1.5)
        // What the kernel's socket buffers hold is answered; the rest waits.
        #expect(try answered() < count / 2)
        #expect(try stack.client().get("/healthz").status == 200)
    }

    @Test func anUnknownMethodIsAnsweredOnceHoweverItsRequestTrickles() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array("BREW /healthz HTTP/1.1\r\n".utf8)[...])
        for index in 0..<5 {
            Thread.sleep(forTimeInterval: 0.05)
            _ = connection.send(Array("X-Part-\(index): 1\r\n".utf8)[...])
        }
        let everything = connection.readAll(withinSeconds: 3)
        #expect(everything.components(separatedBy: "HTTP/1.1 405").count == 2, "\(everything.prefix(400))")
    }

    @Test func headOnAStreamedExportSendsNoBody() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        try stack.makeCampaign("hx", slots: 1, capacity: 5)
        _ = try stack.reserve(stack.client(), campaign: "hx", citizen: "a", slot: "s0")
        _ = try stack.waitForPersistence("hx", expected: 1)
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array(("HEAD /v1/admin/campaigns/hx/reservations.csv HTTP/1.1\r\nHost: x\r\n"
                                   + "Authorization: Bearer \(LiveStack.adminToken)\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").utf8)[...])
        let head = connection.readHead()
        #expect(Self.status(head) == 200 && head.contains("text/csv"))
        let next = connection.readAnswer()
        #expect(Self.status(next) == 200 && next.hasSuffix("{\"status\":\"ok\"}"), "\(next.prefix(200))")
    }

    @Test func aClientThatHalfClosesGetsALargeAnswerWhole() throws {
        let stack = try LiveStack()
        defer { stack.shutdown() }
        let document = try stack.client().get("/openapi.yaml")
        let connection = try RawConnection(from: "127.0.0.1", port: stack.port)
        _ = connection.send(Array("GET /openapi.yaml HTTP/1.1\r\nHost: x\r\n\r\n".utf8)[...])
        connection.shutdownWrites()
        #expect(connection.readAnswer().hasSuffix(document.text))
    }

    static func residentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
}
