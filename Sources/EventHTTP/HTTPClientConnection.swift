import CEvent
import CHTTPParser
import EventLoops
import Glibc

/// One keep-alive HTTP/1.1 client connection on a loop: one request at a
/// time, the connection made again when the server closed it. For the load
/// harness and operator tools, not the server. A bufferevent and
/// http_parser, not evhttp's client: the harness runs beside the server on
/// the same cores, and evhttp's request objects, header queues and timers
/// per request cost it more than the request itself.
public final class HTTPClientConnection {
    public struct Response {
        /// 0 when the request failed below HTTP (refused, reset, timed out).
        public let status: Int
        public let body: [UInt8]
        public let retryAfterSeconds: Int?

        public init(status: Int, body: [UInt8], retryAfterSeconds: Int?) {
            self.status = status
            self.body = body
            self.retryAfterSeconds = retryAfterSeconds
        }
    }

    public typealias Completion = (Response) -> Void

    private let loop: EventLoop
    private let hostHeader: String
    private let address: sockaddr_in?
    private let timeoutSeconds: Int32
    private var buffer: OpaquePointer?
    private var pending: Completion?
    public var isBusy: Bool { pending != nil }

    /// The request being written, reused from one request to the next.
    private var outgoing: [UInt8] = []
    // The response being read.
    private let parser: UnsafeMutablePointer<http_parser>
    private var status = 0
    private var body: [UInt8] = []
    private var headerName: [UInt8] = []
    private var retryAfter: [UInt8]?
    private var inRetryAfter = false
    private var lastWasValue = false
    private var complete = false

    /// `host`: an IPv4 address or a name (looked up once, here).
    public init(loop: EventLoop, host: String, port: UInt16, timeoutSeconds: Int32 = 30) {
        loop.preconditionInLoop()
        self.loop = loop
        self.timeoutSeconds = timeoutSeconds
        hostHeader = host
        address = Self.resolve(host, port: port)
        parser = .allocate(capacity: 1)
        http_parser_init(parser, HTTP_RESPONSE)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        outgoing.reserveCapacity(512)
    }

    deinit {
        if let buffer { bufferevent_free(buffer) }
        parser.deallocate()
    }

    /// Sends one request; `completion` runs on the loop with the answer.
    public func send(method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                     completion: @escaping Completion) {
        loop.preconditionInLoop()
        precondition(pending == nil, "one request at a time")
        pending = completion
        guard let buffer = buffer ?? connect() else { return finish(status: 0) }
        outgoing.removeAll(keepingCapacity: true)
        append(method); append(" "); append(path); append(" HTTP/1.1\r\nHost: "); append(hostHeader); append("\r\n")
        for (name, value) in headers { append(name); append(": "); append(value); append("\r\n") }
        if !body.isEmpty || method == "POST" || method == "PUT" || method == "PATCH" {
            if !body.isEmpty { append("Content-Type: application/json\r\n") }
            append("Content-Length: "); append(String(body.count)); append("\r\n")
        }
        append("\r\n")
        outgoing.append(contentsOf: body)
        resetResponse()
        // Straight to the socket when nothing waits before it (the usual
        // case); what the kernel does not take, or all of it while the
        // connection is still being made (EAGAIN), goes through the
        // bufferevent.
        let written = outgoing.withUnsafeBytes { request -> Int32 in
            let output = bufferevent_get_output(buffer)
            let sent = evbuffer_get_length(output) == 0
                ? DirectSend.now(bufferevent_getfd(buffer), request, UnsafeRawBufferPointer(start: nil, count: 0)) : 0
            return sent < request.count ? bufferevent_write(buffer, request.baseAddress! + sent, request.count - sent) : 0
        }
        if written != 0 { fail() }
    }

    private func append(_ text: String) { outgoing.append(contentsOf: text.utf8) }

    // MARK: the connection

    private static func resolve(_ host: String, port: UInt16) -> sockaddr_in? {
        var hints = addrinfo()
        hints.ai_family = AF_INET
        var found: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &found) == 0, let first = found, let raw = first.pointee.ai_addr else { return nil }
        defer { freeaddrinfo(found) }
        var address = raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee }
        address.sin_port = port.bigEndian
        return address
    }

    private func connect() -> OpaquePointer? {
        guard var address, let fresh = bufferevent_socket_new(loop.eventBase, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        else { return nil }
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(fresh, { _, context in
            Unmanaged<HTTPClientConnection>.fromOpaque(context!).takeUnretainedValue().readable()
        }, nil, { _, events, context in
            Unmanaged<HTTPClientConnection>.fromOpaque(context!).takeUnretainedValue().event(events)
        }, context)
        var timeout = timeval(tv_sec: Int(timeoutSeconds), tv_usec: 0)
        bufferevent_set_timeouts(fresh, &timeout, &timeout)
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bufferevent_socket_connect(fresh, $0, Int32(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            bufferevent_free(fresh)
            return nil
        }
        // Small requests go out at once, not after the peer's delayed ACK
        // (Nagle's algorithm): each request is a complete message.
        var one: Int32 = 1
        setsockopt(bufferevent_getfd(fresh), Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = bufferevent_enable(fresh, Int16(EV_READ | EV_WRITE))
        buffer = fresh
        return fresh
    }

    private func close() {
        if let buffer { bufferevent_free(buffer) }
        buffer = nil
    }

    private func event(_ events: Int16) {
        if events & Int16(BEV_EVENT_CONNECTED) != 0 { return }
        // EOF, an error or a timeout: a response that ends with the
        // connection is complete now; anything else failed.
        if events & Int16(BEV_EVENT_EOF) != 0, pending != nil {
            _ = http_parser_execute(parser, Self.settings, nil, 0)
        }
        close()
        if complete { finish(status: status) } else if pending != nil { fail() }
    }

    private func readable() {
        guard let buffer else { return }
        let input = bufferevent_get_input(buffer)
        let count = evbuffer_get_length(input)
        guard count > 0, let bytes = evbuffer_pullup(input, count) else { return }
        let used = bytes.withMemoryRebound(to: CChar.self, capacity: count) {
            http_parser_execute(parser, Self.settings, $0, count)
        }
        evbuffer_drain(input, count)
        guard pending != nil else { return close() }  // bytes nobody asked for
        if complete {
            let keepAlive = http_should_keep_alive(parser) != 0
            if !keepAlive || used != count { close() }
            finish(status: status)
        } else if http_errno(rawValue: parser.pointee.http_errno) != HPE_OK {
            close()
            fail()
        }
    }

    private func fail() {
        close()
        finish(status: 0)
    }

    private func finish(status: Int) {
        let completion = pending
        pending = nil
        let retryAfterSeconds = status == 0 ? nil : retryAfter.flatMap { Int(String(decoding: $0, as: UTF8.self)) }
        let response = Response(status: status, body: status == 0 ? [] : body, retryAfterSeconds: retryAfterSeconds)
        resetResponse()
        completion?(response)
    }

    private func resetResponse() {
        http_parser_init(parser, HTTP_RESPONSE)
        parser.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        status = 0
        body = []
        headerName.removeAll(keepingCapacity: true)
        retryAfter = nil
        inRetryAfter = false
        lastWasValue = false
        complete = false
    }

    // MARK: the response, from http_parser

    private func headerField(_ bytes: UnsafeRawBufferPointer) {
        // A name after a value starts the next header; http_parser may hand
        // one name over in pieces.
        if lastWasValue {
            headerName.removeAll(keepingCapacity: true)
            inRetryAfter = false
            lastWasValue = false
        }
        headerName.append(contentsOf: bytes)
    }

    private func headerValue(_ bytes: UnsafeRawBufferPointer) {
        if !lastWasValue {
            inRetryAfter = headerName.count == 11 && zip(headerName, "retry-after".utf8).allSatisfy { $0 | 0x20 == $1 }
            if inRetryAfter { retryAfter = [] }
            lastWasValue = true
        }
        if inRetryAfter { retryAfter?.append(contentsOf: bytes) }
    }

    private static func of(_ parser: UnsafeMutablePointer<http_parser>?) -> HTTPClientConnection {
        HTTPParserGlue.owner(of: parser, as: HTTPClientConnection.self)
    }

    /// Shared by every client connection; http_parser only reads it.
    nonisolated(unsafe) private static let settings: UnsafeMutablePointer<http_parser_settings> = HTTPParserGlue.settings { settings in
        settings.on_header_field = { parser, at, length in
            of(parser).headerField(HTTPParserGlue.bytes(at, length))
            return 0
        }
        settings.on_header_value = { parser, at, length in
            of(parser).headerValue(HTTPParserGlue.bytes(at, length))
            return 0
        }
        settings.on_headers_complete = { parser in
            of(parser).status = Int(parser!.pointee.status_code)
            return 0
        }
        settings.on_body = { parser, at, length in
            of(parser).body.append(contentsOf: HTTPParserGlue.bytes(at, length))
            return 0
        }
        settings.on_message_complete = { parser in
            of(parser).complete = true
            return 0
        }
    }
}
