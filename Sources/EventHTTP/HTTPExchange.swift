import EventLoops
/// One request and its answer, on its loop. Answering is safe at any time,
/// even after the client has gone (the answer is dropped then).
public final class HTTPExchange {
    private weak var connection: HTTPConnection?
    /// The request as read; nil when it could not be read (`failure`), and
    /// once the answer is written.
    public private(set) var request: HTTPRequest?
    /// Why the request could not be read: answer with that status and
    /// close (HTTPServer's handler renders it).
    public private(set) var failure: HTTPParseFailure?
    /// What the request turned out to be (a route name), for metrics.
    public var label = "unmatched"
    public private(set) var startedMicros = monotonicMicros()
    public private(set) var isAnswered = false
    private var streamingChunked = false
    public private(set) var isStreaming = false
    /// A HEAD answer of a stream: its head only, its producer told to stop.
    private var streamHeadOnly = false

    init(request: HTTPRequest, connection: HTTPConnection) {
        self.request = request
        failure = nil
        self.connection = connection
    }

    /// `target`: what could be read of the request's target (after an
    /// unknown method), so the answer can be the path's.
    init(failure: HTTPParseFailure, target: String? = nil, connection: HTTPConnection) {
        request = nil
        self.failure = failure
        failedTarget = target
        self.connection = connection
    }

    private var failedTarget: String?

    /// Makes an answered exchange the next request's: HTTPConnection reuses
    /// one nothing else holds, so a connection has one, not one per request.
    func reuse(for request: HTTPRequest) {
        self.request = request
        failure = nil
        failedTarget = nil
        label = "unmatched"
        startedMicros = monotonicMicros()
        isAnswered = false
        streamingChunked = false
        streamHeadOnly = false
    }

    /// The answer is written: the request's bytes go back to the parser,
    /// which reads the next request into them.
    func releaseRequest() {
        request = nil
    }

    /// Set when its connection was refused at the gate: answer 503 and close.
    public var refusal: ConnectionGate.Refusal? { connection?.refusal }

    /// The method, with HEAD read as GET: a HEAD request gets the GET's
    /// answer without its body (RFC 9110 §9.3.2).
    public var method: String {
        guard let request else { return "" }
        return request.method == "HEAD" ? "GET" : request.method
    }

    public var isHead: Bool { request?.method == "HEAD" }

    /// The request target as sent: path and query, not decoded.
    public var uri: String { request?.target ?? failedTarget ?? "/" }

    /// Whether the target of a request that could not be read is known.
    public var hasTarget: Bool { request != nil || failedTarget != nil }

    public func header(_ name: String) -> String? { request?.header(name) }

    public var bodyCount: Int { request?.body.count ?? 0 }

    /// The body, where the request was read (no copy).
    public var body: ArraySlice<UInt8> { request?.body ?? [] }

    /// The peer's IP address as text.
    public var peerAddress: String { connection?.address ?? "" }

    // MARK: answering

    public func respond(status: Int, contentType: String, location: HTTPLocation? = nil, headers: [(String, String)] = [],
                        body: [UInt8]) {
        guard let connection = begin(status: status) else { return }
        body.withUnsafeBytes { send(status: status, contentType: contentType, location: location, headers: headers, body: $0, on: connection) }
    }

    /// Answers with a body `write` appends to a buffer the server lends
    /// (emptied first; kept for the next answer): a body made for this
    /// answer alone costs no buffer of its own.
    public func respond(status: Int, contentType: String, location: HTTPLocation? = nil, headers: [(String, String)] = [],
                        writingBody write: (inout [UInt8]) -> Void) {
        guard let connection = begin(status: status) else { return }
        let server = connection.server
        var body = server.bodyBuffers.take()
        write(&body)
        body.withUnsafeBytes { send(status: status, contentType: contentType, location: location, headers: headers, body: $0, on: connection) }
        server.bodyBuffers.giveBack(body)
    }

    private func send(status: Int, contentType: String, location: HTTPLocation?, headers: [(String, String)],
                      body: UnsafeRawBufferPointer, on connection: HTTPConnection) {
        let keepOpen = wantsKeepOpen(headers)
        withHead(status: status, contentType: contentType, location: location, headers: headers, framing: .length(body.count),
                 keepOpen: keepOpen, on: connection) { head in
            connection.write(head, then: isHead ? UnsafeRawBufferPointer(start: nil, count: 0) : body)
        }
        end(connection, status: status, keepOpen: keepOpen)
    }

    /// Answers with a body shared between many answers (a cached listing):
    /// libevent references the bytes instead of copying them.
    public func respond(status: Int, contentType: String, headers: [(String, String)] = [], sharedBody: SharedBytes) {
        respond(status: status, contentType: contentType, headers: headers, prepared: nil, sharedBody: sharedBody)
    }

    /// Answers with a shared body and header lines made once for many
    /// answers (a cached rendering's): no header is assembled per answer.
    public func respond(status: Int, prepared: PreparedHeaders, sharedBody: SharedBytes) {
        respond(status: status, contentType: nil, headers: [], prepared: prepared, sharedBody: sharedBody)
    }

    private func respond(status: Int, contentType: String?, headers: [(String, String)], prepared: PreparedHeaders?,
                         sharedBody: SharedBytes) {
        guard let connection = begin(status: status) else { return }
        let keepOpen = wantsKeepOpen(headers)
        withHead(status: status, contentType: contentType, headers: headers, prepared: prepared,
                 framing: .length(sharedBody.bytes.count), keepOpen: keepOpen, on: connection) { head in
            if isHead {
                connection.write(head, then: UnsafeRawBufferPointer(start: nil, count: 0))
            } else {
                connection.write(head, then: sharedBody.bytes, sharing: sharedBody)
            }
        }
        end(connection, status: status, keepOpen: keepOpen)
    }

    private func begin(status: Int) -> HTTPConnection? {
        guard !isAnswered else {
            assertionFailure("answered twice")
            return nil
        }
        isAnswered = true
        guard let connection, connection.isOpen else { return nil }
        return connection
    }

    private func end(_ connection: HTTPConnection, status: Int, keepOpen: Bool) {
        connection.server.responded?(self, status)
        connection.finished(self, keepOpen: keepOpen)
    }

    /// Whether the connection may carry another request after this answer.
    private func wantsKeepOpen(_ headers: [(String, String)]) -> Bool {
        guard let request, failure == nil, connection?.refusal == nil, request.keepAlive, !request.isUpgrade else { return false }
        return !headers.contains { HTTPRequest.equalIgnoringCase($0.0, "connection") && HTTPRequest.equalIgnoringCase($0.1, "close") }
    }

    /// `304 Not Modified`: the validators in `headers`, and neither a body nor
    /// its framing or type (RFC 9110, 15.4.5).
    public func respondNotModified(headers: [(String, String)] = [], prepared: PreparedHeaders? = nil) {
        guard let connection = begin(status: 304) else { return }
        let keepOpen = wantsKeepOpen(headers)
        withHead(status: 304, contentType: nil, headers: headers, prepared: prepared, framing: .none, keepOpen: keepOpen,
                 on: connection) { head in
            connection.write(head)
        }
        end(connection, status: 304, keepOpen: keepOpen)
    }

    /// Lends `write` the answer's head, made in the server's one head buffer
    /// (an answer is written at once, on the loop: no buffer per answer).
    private func withHead(status: Int, contentType: String?, location: HTTPLocation? = nil, headers: [(String, String)],
                          prepared: PreparedHeaders? = nil, framing: HTTPResponseHead.Framing, keepOpen: Bool,
                          on connection: HTTPConnection, _ write: (UnsafeRawBufferPointer) -> Void) {
        let server = connection.server
        var head = HTTPResponseHead(status: status, date: server.date, reusing: server.headBuffers.take())
        if let contentType { head.add("Content-Type", contentType) }
        if let location { head.add("Location", location.path, location.id) }
        for (name, value) in headers where !HTTPRequest.equalIgnoringCase(name, "connection") { head.add(name, value) }
        if let prepared { head.append(prepared) }
        let bytes = head.finish(framing: framing, keepOpen: keepOpen, isHTTP10: request?.isHTTP10 ?? false)
        bytes.withUnsafeBytes(write)
        server.headBuffers.giveBack(bytes)
    }

    // MARK: streaming (chunked transfer encoding)

    /// Starts an answer whose body comes in pieces (`sendChunk`), of a
    /// length not known in advance.
    public func startStream(status: Int, contentType: String, headers: [(String, String)] = []) {
        guard let connection = begin(status: status) else { return }
        isStreaming = true
        streamHeadOnly = isHead
        // HTTP/1.0 has no chunks: the body ends where the connection does.
        streamingChunked = !(request?.isHTTP10 ?? true)
        withHead(status: status, contentType: contentType, headers: headers,
                 framing: streamingChunked ? .chunked : .untilClose, keepOpen: streamingChunked, on: connection) { head in
            connection.write(head)
        }
        connection.server.responded?(self, status)
    }

    /// Sends one piece; `flushed(true)` runs once the connection has written
    /// it out (that paces a producer to the client's speed), `flushed(false)`
    /// when the connection is gone.
    public func sendChunk(_ bytes: [UInt8], flushed: @escaping (Bool) -> Void) {
        guard isStreaming, !streamHeadOnly, let connection, connection.isOpen else { return flushed(false) }
        guard !bytes.isEmpty else { return flushed(true) }
        if streamingChunked { connection.write(Array((String(bytes.count, radix: 16) + "\r\n").utf8)) }
        connection.write(bytes)
        if streamingChunked { connection.write([0x0D, 0x0A]) }
        connection.whenFlushed(flushed)
    }

    /// Ends a stream properly: the last chunk, then the connection carries on.
    public func endStream() {
        guard isStreaming else { return }
        isStreaming = false
        guard let connection, connection.isOpen else { return }
        if streamingChunked, !streamHeadOnly { connection.write(Array("0\r\n\r\n".utf8)) }
        connection.finished(self, keepOpen: streamingChunked && (request?.keepAlive ?? false))
    }

    /// Ends a stream that must not look complete (the producer failed or the
    /// client stopped reading): the connection is dropped mid-body.
    public func abortStream() {
        // A HEAD answer has no body to cut: it ends as it should.
        if streamHeadOnly, isStreaming { return endStream() }
        isStreaming = false
        connection?.close()
    }

    func connectionClosed() {
        isStreaming = false
    }
}

/// The `Location` of what an answer created: a fixed path and the new
/// resource's id, written into the head as they are (no string is made of
/// the two).
public struct HTTPLocation: Sendable {
    public let path: StaticString
    public let id: String

    public init(_ path: StaticString, _ id: String) {
        self.path = path
        self.id = id
    }
}

/// Header lines made once for many answers (a cached rendering's): bytes
/// of `Name: value` lines, values cleaned of line breaks as every header's
/// are; `Connection` is the server's to set and is left out.
public final class PreparedHeaders: Sendable {
    let bytes: [UInt8]

    public init(_ headers: [(String, String)]) {
        var lines = HTTPResponseHead(linesOnly: ())
        for (name, value) in headers where !HTTPRequest.equalIgnoringCase(name, "connection") { lines.add(name, value) }
        bytes = lines.lines
    }
}

/// The status line and headers of an answer, as bytes (pure).
struct HTTPResponseHead {
    enum Framing { case length(Int), chunked, untilClose, none }

    private var bytes: [UInt8] = []

    /// Header lines alone (PreparedHeaders).
    init(linesOnly: ()) {}

    var lines: [UInt8] { bytes }

    mutating func append(_ prepared: PreparedHeaders) {
        bytes.append(contentsOf: prepared.bytes)
    }

    /// `reusing`: an empty buffer to write into, so an answer need not
    /// allocate one.
    init(status: Int, date: String, reusing buffer: [UInt8] = []) {
        bytes = buffer
        bytes.reserveCapacity(256)
        // Piece by piece: an interpolated status line costs two allocations
        // per answer.
        append("HTTP/1.1 ")
        append(String(status))
        append(" ")
        append(HTTPStatus.reason(status))
        append("\r\n")
        if !date.isEmpty { add("Date", date) }
    }

    mutating func add(_ name: String, _ value: String) {
        append(name)
        append(": ")
        appendValue(value)
        append("\r\n")
    }

    /// A header whose value is a fixed prefix and a text (a `Location`).
    mutating func add(_ name: String, _ prefix: StaticString, _ value: String) {
        append(name)
        append(": ")
        prefix.withUTF8Buffer { bytes.append(contentsOf: $0) }
        appendValue(value)
        append("\r\n")
    }

    private mutating func appendValue(_ value: String) {
        // A header value never carries a line break (response splitting).
        var safe = value
        safe.withUTF8 { value in
            if value.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
                bytes.append(contentsOf: value.lazy.filter { $0 != 0x0D && $0 != 0x0A })
            } else {
                bytes.append(contentsOf: value)
            }
        }
    }

    mutating func finish(framing: Framing, keepOpen: Bool, isHTTP10: Bool) -> [UInt8] {
        switch framing {
        case .length(let count): add("Content-Length", String(count))
        case .chunked: add("Transfer-Encoding", "chunked")
        case .untilClose, .none: break
        }
        if !keepOpen { add("Connection", "close") } else if isHTTP10 { add("Connection", "keep-alive") }
        append("\r\n")
        return bytes
    }

    private mutating func append(_ text: String) {
        var text = text
        text.withUTF8 { bytes.append(contentsOf: $0) }
    }
}

public enum HTTPStatus {
    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: return "Continue"
        case 200: return "OK"
        case 201: return "Created"
        case 303: return "See Other"
        case 304: return "Not Modified"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 505: return "HTTP Version Not Supported"
        default: return "Status"
        }
    }
}
