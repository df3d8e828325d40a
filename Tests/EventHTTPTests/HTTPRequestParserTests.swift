import EventHTTP
import Testing

/// The request parser on bytes alone: no sockets, no loop.
@Suite struct HTTPRequestParserTests {
    let limits = HTTPRequestParser.Limits(headersBytesMax: 1_024, headersCountMax: 8, bodyBytesMax: 64)

    /// Feeds `text` in pieces of `piece` bytes; returns each request read,
    /// or the failure that stopped it.
    func read(_ text: String, piece: Int = .max, limits: HTTPRequestParser.Limits? = nil) -> ([HTTPRequest], HTTPParseFailure?) {
        let parser = HTTPRequestParser(limits: limits ?? self.limits)
        var requests: [HTTPRequest] = []
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let part = bytes.prefix(piece)
            let (consumed, result) = part.withUnsafeBytes { parser.feed($0) }
            bytes = bytes.dropFirst(consumed)
            switch result {
            case .incomplete: if consumed == 0 { return (requests, nil) }
            case .request:
                if let request = parser.request { requests.append(request) }
                parser.resume()
            case .failed(let failure): return (requests, failure)
            }
        }
        return (requests, nil)
    }

    @Test func readsMethodTargetHeadersAndBody() throws {
        let (requests, failure) = read("POST /v1/campaigns/x/reservations?a=1 HTTP/1.1\r\nHost: h\r\nIdempotency-Key: k-1\r\n"
                                       + "Content-Length: 5\r\n\r\nhello")
        #expect(failure == nil)
        let request = try #require(requests.first)
        #expect(request.method == "POST")
        #expect(request.target == "/v1/campaigns/x/reservations?a=1")
        #expect(request.header("idempotency-key") == "k-1")
        #expect(request.header("IDEMPOTENCY-KEY") == "k-1")
        #expect(request.header("Missing") == nil)
        #expect(Array(request.body) == Array("hello".utf8))
        #expect(request.keepAlive)
    }

    @Test func theSameRequestWhateverHowItIsCut() throws {
        let text = "PATCH /v1/admin/campaigns/c HTTP/1.1\r\nHost: h\r\nX-Long-Header-Name: some value here\r\n"
            + "Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n"
        let (whole, _) = read(text)
        let expected = try #require(whole.first)
        #expect(Array(expected.body) == Array("{\"a\":1}".utf8))
        for piece in 1..<24 {
            let (requests, failure) = read(text, piece: piece)
            #expect(failure == nil, "pieces of \(piece)")
            #expect(requests.count == 1, "pieces of \(piece)")
            #expect(requests.first?.target == expected.target && requests.first?.body == expected.body, "pieces of \(piece)")
            #expect(requests.first?.header("x-long-header-name") == "some value here", "pieces of \(piece)")
        }
    }

    @Test func pipelinedRequestsComeOneAtATimeInOrder() {
        let (requests, failure) = read("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\nDELETE /c HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(failure == nil)
        #expect(requests.map(\.target) == ["/a", "/b", "/c"])
        #expect(requests.map(\.method) == ["GET", "GET", "DELETE"])
    }

    /// Each request's target, headers and body share the parser's one buffer:
    /// a request read earlier (still held, as an answer in flight holds
    /// it) keeps its own bytes while the next ones are read into it.
    @Test func aRequestKeepsItsBytesWhileTheNextAreRead() {
        let long = String(repeating: "x", count: 40)
        let (requests, failure) = read("POST /long HTTP/1.1\r\nContent-Length: 40\r\nX-A: 1\r\n\r\n\(long)"
                                       + "POST /s HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
                                       + "GET /none HTTP/1.1\r\nX-B: 2\r\n\r\n")
        #expect(failure == nil)
        #expect(requests.map(\.target) == ["/long", "/s", "/none"])
        #expect(requests.map { String(decoding: $0.body, as: UTF8.self) } == [long, "abc", ""])
        #expect(requests[0].header("X-A") == "1" && requests[0].header("X-B") == nil)
        #expect(requests[2].header("X-B") == "2" && requests[2].header("X-A") == nil)
    }

    /// A chunked body's trailers come after it in the buffer: the body ends
    /// where they begin, however the bytes are cut.
    @Test func trailersAreNotPartOfTheBody() {
        let text = "POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: yes\r\n\r\n"
        for piece in [1, 3, 7, Int.max] {
            let (requests, failure) = read(text, piece: piece)
            #expect(failure == nil)
            #expect(requests.map { String(decoding: $0.body, as: UTF8.self) } == ["hello"], "pieces of \(piece)")
        }
    }

    @Test func limitsAreHeldBeforeTheBytesAreKept() {
        #expect(read("GET / HTTP/1.1\r\nX: \(String(repeating: "a", count: 2_000))\r\n\r\n").1 == .headersTooLarge)
        #expect(read("GET /\(String(repeating: "a", count: 2_000)) HTTP/1.1\r\n\r\n").1 == .headersTooLarge)
        let many = (0..<9).map { "H\($0): v\r\n" }.joined()
        #expect(read("GET / HTTP/1.1\r\n\(many)\r\n").1 == .headersTooLarge)
        // Refused by its Content-Length, before any of the body is read.
        #expect(read("POST / HTTP/1.1\r\nContent-Length: 65\r\n\r\n").1 == .bodyTooLarge)
        let chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n\(String(repeating: "a", count: 64))\r\n1\r\nb\r\n0\r\n\r\n"
        #expect(read(chunked).1 == .bodyTooLarge)
    }

    @Test func methodsVersionsAndMalformedRequests() throws {
        #expect(read("BREW / HTTP/1.1\r\n\r\n").1 == .unknownMethod)
        #expect(read("GET / HTTP/2.0\r\n\r\n").1 == .versionNotSupported)
        if case .malformed = read("GET / HTTP/1.1\r\nnonsense\r\n\r\n").1 {} else { Issue.record("a header without a colon") }
        if case .malformed = read("GET /\u{0}x HTTP/1.1\r\n\r\n").1 {} else { Issue.record("a NUL in the target") }
        #expect(try #require(read("TRACE / HTTP/1.1\r\n\r\n").0.first).method == "TRACE")
        let connect = try #require(read("CONNECT h:1 HTTP/1.1\r\nHost: h\r\n\r\n").0.first)
        #expect(connect.isUpgrade && !connect.keepAlive)
    }

    @Test func theTargetOfARequestLineWithAnUnknownMethod() {
        func target(_ line: String) -> String? {
            Array(line.utf8).withUnsafeBytes { HTTPRequestParser.targetOfRequestLine($0) }
        }
        #expect(target("QUERY /healthz HTTP/1.1\r") == "/healthz")
        #expect(target("REW /v1/campaigns/x?a=1 HTTP/1.1") == "/v1/campaigns/x?a=1")
        #expect(target("BREW") == nil)
        #expect(target("BREW * HTTP/1.1") == nil)
        #expect(target("\u{1}\u{2}") == nil)
    }

    @Test func keepAliveFollowsTheVersionAndConnectionHeader() throws {
        #expect(try #require(read("GET / HTTP/1.0\r\n\r\n").0.first).keepAlive == false)
        #expect(try #require(read("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").0.first).keepAlive)
        #expect(try #require(read("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").0.first).keepAlive == false)
    }

    @Test func aClientThatExpectsContinueIsToldAfterTheHeaders() {
        let parser = HTTPRequestParser(limits: limits)
        let head = Array("PUT / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n".utf8)
        let (consumed, result) = head.withUnsafeBytes { parser.feed($0) }
        #expect(consumed == head.count && result == .incomplete)
        #expect(parser.expectsContinue)
        let (_, done) = Array("{}".utf8).withUnsafeBytes { parser.feed($0) }
        #expect(done == .request && !parser.expectsContinue)
    }
}
