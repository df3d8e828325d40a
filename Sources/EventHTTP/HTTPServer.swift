import CEvent
import Glibc

/// Limits of the HTTP layer (STYLE.md: a limit on everything, unit last).
public struct HTTPLimits: Sendable {
    /// Request line plus headers.
    public var headersBytesMax = 8 * 1024
    /// The largest body any route takes (admin slot uploads); routes check
    /// their own, smaller limits and answer 413 as problem+json.
    public var bodyBytesMax = 4 * 1024 * 1024
    /// A connection with no traffic for this long is closed.
    public var idleTimeoutSeconds = 30

    public init() {}
}

/// One `evhttp` on one loop, accepting on that loop's own listener.
public final class HTTPServer {
    public typealias Handler = (HTTPExchange) -> Void

    private let loop: EventLoop
    private var http: OpaquePointer?
    private let handler: Handler
    private var context: Unmanaged<HTTPServer>?
    private var boundSocket: OpaquePointer?
    /// Connections that have sent a request, each with the exchange
    /// streaming on it (if any). evhttp tells us when one closes.
    private var connections: [OpaquePointer: HTTPExchange?] = [:]
    /// Called with each answer's status as it is sent (metrics).
    public var responded: ((HTTPExchange, Int) -> Void)?

    /// Connections open on this server that have sent at least one request.
    public var openConnections: Int { connections.count }

    public init(loop: EventLoop, listenerFD: Int32, limits: HTTPLimits, handler: @escaping Handler) throws {
        self.loop = loop
        self.handler = handler
        guard let http = evhttp_new(loop.eventBase) else { throw SocketError(call: "evhttp_new", errno: ENOMEM) }
        self.http = http
        evhttp_set_max_headers_size(http, limits.headersBytesMax)
        evhttp_set_max_body_size(http, limits.bodyBytesMax)
        evhttp_set_timeout(http, Int32(limits.idleTimeoutSeconds))
        let methods = EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_PUT.rawValue
            | EVHTTP_REQ_PATCH.rawValue | EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_HEAD.rawValue | EVHTTP_REQ_OPTIONS.rawValue
        evhttp_set_allowed_methods(http, UInt16(methods))
        let context = Unmanaged.passRetained(self)
        self.context = context
        evhttp_set_gencb(http, { request, context in
            guard let request, let context else { return }
            let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
            server.track(request)
            server.handler(HTTPExchange(request: request, server: server))
        }, context.toOpaque())
        guard let bound = evhttp_accept_socket_with_handle(http, listenerFD) else {
            throw SocketError(call: "evhttp_accept_socket", errno: errno)
        }
        boundSocket = bound
    }

    /// Stops taking new connections (closes the listener); requests on open
    /// connections go on. On the loop thread.
    public func stopAccepting() {
        loop.preconditionInLoop()
        if let http, let boundSocket { evhttp_del_accept_socket(http, boundSocket) }
        boundSocket = nil
    }

    /// Registers a connection on its first request, so that its close is
    /// seen (open-connection count, streams whose reader went away).
    private func track(_ request: OpaquePointer) {
        guard let connection = evhttp_request_get_connection(request), connections[connection] == nil else { return }
        connections[connection] = .some(nil)
        evhttp_connection_set_closecb(connection, { connection, context in
            guard let connection, let context else { return }
            Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue().closed(connection)
        }, context!.toOpaque())
    }

    private func closed(_ connection: OpaquePointer) {
        if case .some(.some(let streaming)) = connections.removeValue(forKey: connection) { streaming.connectionClosed() }
    }

    fileprivate func setStreaming(_ exchange: HTTPExchange?, on connection: OpaquePointer) {
        guard connections[connection] != nil else { return }
        connections[connection] = .some(exchange)
    }

    /// Stops accepting and frees the evhttp; on the loop thread.
    public func close() {
        loop.preconditionInLoop()
        if let http { evhttp_free(http) }
        http = nil
        connections.removeAll()
        context?.release()
        context = nil
    }
}

/// One request and its answer. Valid on its loop until `respond` (or the end
/// of a stream); evhttp keeps the request alive until then even when the
/// client has gone, so a late answer is always safe.
public final class HTTPExchange {
    private var request: OpaquePointer?
    private weak var server: HTTPServer?
    /// What the request turned out to be (a route name), for metrics.
    public var label = "unmatched"
    public let startedMicros = monotonicMicros()

    init(request: OpaquePointer, server: HTTPServer) {
        self.request = request
        self.server = server
    }

    public var isAnswered: Bool { request == nil }

    public var method: String {
        guard let request else { return "" }
        switch evhttp_request_get_command(request) {
        case EVHTTP_REQ_GET: return "GET"
        case EVHTTP_REQ_POST: return "POST"
        case EVHTTP_REQ_PUT: return "PUT"
        case EVHTTP_REQ_PATCH: return "PATCH"
        case EVHTTP_REQ_DELETE: return "DELETE"
        case EVHTTP_REQ_HEAD: return "HEAD"
        default: return "OTHER"
        }
    }

    /// The request target as sent: path and query, not decoded.
    public var uri: String {
        guard let request, let raw = evhttp_request_get_uri(request) else { return "/" }
        return String(cString: raw)
    }

    public func header(_ name: String) -> String? {
        guard let request, let raw = evhttp_find_header(evhttp_request_get_input_headers(request), name) else { return nil }
        return String(cString: raw)
    }

    public var bodyCount: Int {
        guard let request else { return 0 }
        return evbuffer_get_length(evhttp_request_get_input_buffer(request))
    }

    public func body() -> [UInt8] {
        guard let request else { return [] }
        let buffer = evhttp_request_get_input_buffer(request)
        let count = evbuffer_get_length(buffer)
        return [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
            let copied = evbuffer_copyout(buffer, bytes.baseAddress, count)
            initialized = max(0, copied)
        }
    }

    /// The peer's IP address as text.
    public var peerAddress: String {
        guard let request, let connection = evhttp_request_get_connection(request) else { return "" }
        var address: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(connection, &address, &port)
        return address.map { String(cString: $0) } ?? ""
    }

    public func respond(status: Int, contentType: String, headers: [(String, String)] = [], body: [UInt8]) {
        guard let request else { preconditionFailure("answered twice") }
        addHeaders(request, contentType: contentType, headers)
        let output = evhttp_request_get_output_buffer(request)
        body.withUnsafeBytes { _ = evbuffer_add(output, $0.baseAddress, $0.count) }
        evhttp_send_reply(request, Int32(status), HTTPStatus.reason(status), nil)
        self.request = nil
        server?.responded?(self, status)
    }

    /// Answers with a body that is shared between many answers (a cached
    /// listing): evhttp references the bytes instead of copying them, and
    /// releases them once they are written out.
    public func respond(status: Int, contentType: String, headers: [(String, String)] = [], sharedBody: SharedBytes) {
        guard let request else { preconditionFailure("answered twice") }
        addHeaders(request, contentType: contentType, headers)
        let output = evhttp_request_get_output_buffer(request)
        let retained = Unmanaged.passRetained(sharedBody)
        let added = evbuffer_add_reference(output, sharedBody.bytes.baseAddress, sharedBody.bytes.count, { _, _, context in
            Unmanaged<SharedBytes>.fromOpaque(context!).release()
        }, retained.toOpaque())
        if added != 0 {
            retained.release()
            _ = evbuffer_add(output, sharedBody.bytes.baseAddress, sharedBody.bytes.count)
        }
        evhttp_send_reply(request, Int32(status), HTTPStatus.reason(status), nil)
        self.request = nil
        server?.responded?(self, status)
    }

    // MARK: streaming (chunked transfer encoding)

    private var streamClosed = false
    public var isStreaming: Bool { streamContext != nil }
    private var pendingFlush: ((Bool) -> Void)?
    private var streamContext: Unmanaged<HTTPExchange>?

    public func startStream(status: Int, contentType: String, headers: [(String, String)] = []) {
        guard let request, let connection = evhttp_request_get_connection(request) else {
            preconditionFailure("answered twice")
        }
        addHeaders(request, contentType: contentType, headers)
        // The server tells a paced producer when its connection closes
        // (nobody is reading any more); the context holds the exchange until
        // the stream ends.
        streamContext = Unmanaged.passRetained(self)
        server?.setStreaming(self, on: connection)
        evhttp_send_reply_start(request, Int32(status), HTTPStatus.reason(status))
        server?.responded?(self, status)
    }

    /// Sends one chunk; `flushed(true)` runs once the connection has written
    /// it out (that paces a producer to the client's speed), `flushed(false)`
    /// when the connection is gone.
    public func sendChunk(_ bytes: [UInt8], flushed: @escaping (Bool) -> Void) {
        guard let request, !streamClosed, evhttp_request_get_connection(request) != nil else {
            return flushed(false)
        }
        precondition(pendingFlush == nil, "one chunk at a time")
        pendingFlush = flushed
        let buffer = evbuffer_new()
        bytes.withUnsafeBytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply_chunk_with_cb(request, buffer, { _, context in
            Unmanaged<HTTPExchange>.fromOpaque(context!).takeUnretainedValue().chunkFlushed()
        }, streamContext!.toOpaque())
        evbuffer_free(buffer)
    }

    public func endStream() {
        if let request, !streamClosed, let connection = evhttp_request_get_connection(request) {
            server?.setStreaming(nil, on: connection)
            evhttp_send_reply_end(request)
        }
        request = nil
        streamContext?.release()
        streamContext = nil
    }

    /// Ends a stream that must not look complete (the producer failed or the
    /// client stopped reading): the connection is dropped mid-body.
    public func abortStream() {
        if let request, !streamClosed, let connection = evhttp_request_get_connection(request) {
            server?.setStreaming(nil, on: connection)
            evhttp_connection_free(connection)
        }
        request = nil
        pendingFlush = nil
        streamContext?.release()
        streamContext = nil
    }

    private func chunkFlushed() {
        let flushed = pendingFlush
        pendingFlush = nil
        flushed?(true)
    }

    fileprivate func connectionClosed() {
        streamClosed = true
        let flushed = pendingFlush
        pendingFlush = nil
        flushed?(false)
    }

    private func addHeaders(_ request: OpaquePointer, contentType: String, _ headers: [(String, String)]) {
        let output = evhttp_request_get_output_headers(request)
        evhttp_add_header(output, "Content-Type", contentType)
        for (name, value) in headers { evhttp_add_header(output, name, value) }
    }
}

enum HTTPStatus {
    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 409: return "Conflict"
        case 413: return "Content Too Large"
        case 422: return "Unprocessable Content"
        case 429: return "Too Many Requests"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}

/// Immutable bytes at a stable address, shared by reference between
/// answers (and so between the loop and libevent's buffers). Reference
/// counting is atomic, so the cleanup libevent runs may release it anywhere.
public final class SharedBytes: @unchecked Sendable {
    public let bytes: UnsafeRawBufferPointer

    public init(_ source: [UInt8]) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, source.count), alignment: 1)
        source.withUnsafeBytes { copy.copyMemory(from: $0) }
        bytes = UnsafeRawBufferPointer(start: copy.baseAddress, count: source.count)
    }

    deinit { UnsafeMutableRawBufferPointer(mutating: bytes).deallocate() }
}

public func monotonicMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}
