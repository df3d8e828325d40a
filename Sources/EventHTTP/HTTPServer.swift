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
    /// A request must arrive whole within this long of its first byte, however
    /// steadily it trickles (slowloris); past it the connection is closed.
    public var requestDeadlineSeconds = 10
    /// A refused connection (over a connection cap) is kept this long for its
    /// request to arrive and be answered 503; then it is closed.
    public var refusedLingerMillis = 1_000
    /// Refused connections one loop keeps waiting for their request at once;
    /// past that, refused connections are closed at once without an answer.
    public var refusedLingeringMax = 256
    /// Connections one loop accepts before it turns to its other events.
    /// evconnlistener accepts until the backlog is empty: a burst of
    /// thousands would hold every request on the loop until it is done.
    public var acceptBurstMax = 64

    public init() {}
}

/// One `evhttp` on one loop, accepting on that loop's own listener.
///
/// libevent 2.1 has no hook between accept and evhttp (2.2's
/// `evhttp_set_newreqcb`), so connections are seen through the bufferevent
/// evhttp asks us to make for each one (`evhttp_set_bevcb`): an admission
/// event right after the accept, before any byte is read, counts it at the
/// `ConnectionGate`, registers its close, and watches its input for the
/// request deadline.
public final class HTTPServer {
    public typealias Handler = (HTTPExchange) -> Void

    private let loop: EventLoop
    private var http: OpaquePointer?
    private let handler: Handler
    private let limits: HTTPLimits
    private let gate: ConnectionGate
    private var context: Unmanaged<HTTPServer>?
    private var boundSocket: OpaquePointer?
    private var connections: [OpaquePointer: ConnectionState] = [:]
    /// Bufferevents evhttp has just made for accepted connections, waiting
    /// for the admission event.
    private var unadmitted: [OpaquePointer] = []
    private var admissionEvent: OpaquePointer?
    private var deadlineSweep: LoopTimer?
    /// States of connections closed since the last sweep: their input
    /// callback may still name them until evhttp has freed the buffer.
    private var closedStates: [ConnectionState] = []
    private var refusedLingering = 0
    private var acceptedThisTurn = 0
    private var acceptPaused = false
    /// Called with each answer's status as it is sent (metrics).
    public var responded: ((HTTPExchange, Int) -> Void)?
    /// Called when a connection is refused at the gate, or cut off for
    /// missing the request deadline (metrics).
    public var connectionEnded: ((ConnectionEnd) -> Void)?

    public enum ConnectionEnd {
        case refused(ConnectionGate.Refusal), closedUnanswered(ConnectionGate.Refusal), deadlineMissed
    }

    /// Connections open on this loop (admitted or refused and lingering).
    public var openConnections: Int { connections.count }

    public init(loop: EventLoop, listenerFD: Int32, limits: HTTPLimits, gate: ConnectionGate,
                handler: @escaping Handler) throws {
        self.loop = loop
        self.handler = handler
        self.limits = limits
        self.gate = gate
        guard let http = evhttp_new(loop.eventBase) else { throw SocketError(call: "evhttp_new", errno: ENOMEM) }
        self.http = http
        evhttp_set_max_headers_size(http, limits.headersBytesMax)
        evhttp_set_max_body_size(http, limits.bodyBytesMax)
        evhttp_set_timeout(http, Int32(limits.idleTimeoutSeconds))
        // A request refused for its size is read to its end before the
        // close, so the client sees the answer instead of a reset.
        evhttp_set_flags(http, Int32(EVHTTP_SERVER_LINGERING_CLOSE))
        let methods = EVHTTP_REQ_GET.rawValue | EVHTTP_REQ_POST.rawValue | EVHTTP_REQ_PUT.rawValue
            | EVHTTP_REQ_PATCH.rawValue | EVHTTP_REQ_DELETE.rawValue | EVHTTP_REQ_HEAD.rawValue | EVHTTP_REQ_OPTIONS.rawValue
        evhttp_set_allowed_methods(http, UInt16(methods))
        let context = Unmanaged.passRetained(self)
        self.context = context
        evhttp_set_gencb(http, { request, context in
            guard let request, let context else { return }
            let server = Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue()
            let exchange = HTTPExchange(request: request, server: server)
            exchange.refusal = server.requestArrived(request)
            server.handler(exchange)
        }, context.toOpaque())
        evhttp_set_bevcb(http, { base, context in
            Unmanaged<HTTPServer>.fromOpaque(context!).takeUnretainedValue().makeConnectionBuffer(base!)
        }, context.toOpaque())
        admissionEvent = event_new(loop.eventBase, -1, 0, { _, _, context in
            Unmanaged<HTTPServer>.fromOpaque(context!).takeUnretainedValue().admitNewConnections()
        }, context.toOpaque())
        deadlineSweep = loop.schedule(everyMillis: 250) { [unowned self] in sweepDeadlines() }
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

    // MARK: connections

    /// evhttp's bufferevent factory, called inside its accept before the
    /// socket is attached; admission runs once the accept callback is done.
    private func makeConnectionBuffer(_ base: OpaquePointer) -> OpaquePointer? {
        let buffer = bufferevent_socket_new(base, -1, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        if let buffer {
            unadmitted.append(buffer)
            event_active(admissionEvent, 0, 0)
        }
        // The listener checks whether it is still enabled after each accept:
        // pausing it here ends this burst; admission resumes it, after the
        // events already waiting (requests on open connections) have run.
        acceptedThisTurn += 1
        if acceptedThisTurn >= limits.acceptBurstMax, let listener = boundSocket.flatMap(evhttp_bound_socket_get_listener) {
            evconnlistener_disable(listener)
            acceptPaused = true
        }
        return buffer
    }

    private func admitNewConnections() {
        let buffers = unadmitted
        unadmitted.removeAll(keepingCapacity: true)
        for buffer in buffers { admit(buffer) }
        acceptedThisTurn = 0
        if acceptPaused, let listener = boundSocket.flatMap(evhttp_bound_socket_get_listener) {
            evconnlistener_enable(listener)
        }
        acceptPaused = false
    }

    private func admit(_ buffer: OpaquePointer) {
        // evhttp's buffer callbacks carry its connection; the check below
        // makes sure that is what we hold before using it.
        var callbackArgument: UnsafeMutableRawPointer?
        bufferevent_getcb(buffer, nil, nil, nil, &callbackArgument)
        guard let callbackArgument else { return }
        let connection = OpaquePointer(callbackArgument)
        guard evhttp_connection_get_bufferevent(connection) == buffer, connections[connection] == nil else { return }
        var host: UnsafeMutablePointer<CChar>?
        var port: UInt16 = 0
        evhttp_connection_get_peer(connection, &host, &port)
        let address = host.map { String(cString: $0) } ?? ""
        let refusal = gate.admit(address)
        if let refusal {
            guard refusedLingering < limits.refusedLingeringMax else {
                connectionEnded?(.closedUnanswered(refusal))
                return evhttp_connection_free(connection)
            }
            refusedLingering += 1
            connectionEnded?(.refused(refusal))
        }
        let state = ConnectionState(address: address, refusal: refusal)
        if refusal != nil { state.requestDeadlineMicros = monotonicMicros() + Int64(limits.refusedLingerMillis) * 1000 }
        state.requestDeadlineSpanMicros = Int64(limits.requestDeadlineSeconds) * 1_000_000
        connections[connection] = state
        evhttp_connection_set_closecb(connection, { connection, context in
            guard let connection, let context else { return }
            Unmanaged<HTTPServer>.fromOpaque(context).takeUnretainedValue().closed(connection)
        }, context!.toOpaque())
        // Each read into the connection's input starts the request deadline
        // if no request is under way; the complete request stops it.
        _ = evbuffer_add_cb(bufferevent_get_input(buffer), { _, info, state in
            guard let info, info.pointee.n_added > 0, let state else { return }
            Unmanaged<ConnectionState>.fromOpaque(state).takeUnretainedValue().bytesArrived()
        }, Unmanaged.passUnretained(state).toOpaque())
    }

    /// A whole request has arrived: its deadline is met. Returns why the
    /// connection was refused, if it was (the request is answered 503).
    private func requestArrived(_ request: OpaquePointer) -> ConnectionGate.Refusal? {
        guard let connection = evhttp_request_get_connection(request), let state = connections[connection] else { return nil }
        if state.refusal == nil { state.requestDeadlineMicros = 0 }
        return state.refusal
    }

    private func closed(_ connection: OpaquePointer) {
        guard let state = connections.removeValue(forKey: connection) else { return }
        if state.refusal == nil { gate.release(state.address) } else { refusedLingering -= 1 }
        state.streaming?.connectionClosed()
        state.streaming = nil
        closedStates.append(state)
    }

    /// Closes connections whose request is overdue.
    private func sweepDeadlines() {
        closedStates.removeAll(keepingCapacity: true)
        let now = monotonicMicros()
        // A connection streaming an answer (an export) is busy, not late,
        // whatever its client has sent meanwhile.
        let overdue = connections.compactMap { connection, state in
            state.streaming == nil && state.requestDeadlineMicros != 0 && state.requestDeadlineMicros < now ? connection : nil
        }
        for connection in overdue {
            if connections[connection]?.refusal == nil { connectionEnded?(.deadlineMissed) }
            evhttp_connection_free(connection)
        }
    }

    fileprivate func setStreaming(_ exchange: HTTPExchange?, on connection: OpaquePointer) {
        connections[connection]?.streaming = exchange
    }

    /// Stops accepting and frees the evhttp; on the loop thread.
    public func close() {
        loop.preconditionInLoop()
        deadlineSweep?.cancel()
        deadlineSweep = nil
        unadmitted.removeAll()
        if let http { evhttp_free(http) }
        http = nil
        connections.removeAll()
        closedStates.removeAll()
        if let admissionEvent { event_free(admissionEvent) }
        admissionEvent = nil
        context?.release()
        context = nil
    }
}

/// What the server knows of one connection.
private final class ConnectionState {
    let address: String
    /// Set when the gate refused it: its request is answered 503.
    let refusal: ConnectionGate.Refusal?
    /// Monotonic time by which the request under way must be whole; 0: no
    /// request under way.
    var requestDeadlineMicros: Int64 = 0
    var requestDeadlineSpanMicros: Int64 = 0
    /// The exchange streaming its answer on this connection, told when the
    /// reader goes away.
    var streaming: HTTPExchange?

    init(address: String, refusal: ConnectionGate.Refusal?) {
        self.address = address
        self.refusal = refusal
    }

    func bytesArrived() {
        if requestDeadlineMicros == 0 { requestDeadlineMicros = monotonicMicros() + requestDeadlineSpanMicros }
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
    /// Set when its connection was refused at the gate: answer 503 and close.
    public internal(set) var refusal: ConnectionGate.Refusal?
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
        guard let request else { return assertionFailure("answered twice") }
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
        guard let request else { return assertionFailure("answered twice") }
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
            return assertionFailure("answered twice")
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
        guard let request, let streamContext, !streamClosed, evhttp_request_get_connection(request) != nil else {
            return flushed(false)
        }
        precondition(pendingFlush == nil, "one chunk at a time")
        pendingFlush = flushed
        let buffer = evbuffer_new()
        bytes.withUnsafeBytes { _ = evbuffer_add(buffer, $0.baseAddress, $0.count) }
        evhttp_send_reply_chunk_with_cb(request, buffer, { _, context in
            Unmanaged<HTTPExchange>.fromOpaque(context!).takeUnretainedValue().chunkFlushed()
        }, streamContext.toOpaque())
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
