import CEvent
import EventLoops
import Glibc

/// One keep-alive HTTP/1.1 client connection on a loop (evhttp's client
/// side): one request at a time, reconnected by evhttp when the server
/// closes it. For the load harness and operator tools, not the server.
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
    private let host: String
    private var connection: OpaquePointer?
    private var pending: Completion?
    /// The socket last given TCP_NODELAY (evhttp makes a new one on reconnect).
    private var tunedSocket: Int32 = -1
    public var isBusy: Bool { pending != nil }

    public init(loop: EventLoop, host: String, port: UInt16, timeoutSeconds: Int32 = 30) {
        loop.preconditionInLoop()
        self.loop = loop
        self.host = host
        connection = evhttp_connection_base_new(loop.eventBase, nil, host, port)
        evhttp_connection_set_timeout(connection, timeoutSeconds)
        // A request is ours to retry or not: evhttp must not resend it.
        evhttp_connection_set_retries(connection, 0)
    }

    deinit { if let connection { evhttp_connection_free(connection) } }

    /// Sends one request; `completion` runs on the loop with the answer.
    public func send(method: String, path: String, headers: [(String, String)] = [], body: [UInt8] = [],
                     completion: @escaping Completion) {
        loop.preconditionInLoop()
        precondition(pending == nil, "one request at a time")
        pending = completion
        let context = Unmanaged.passUnretained(self).toOpaque()
        guard let request = evhttp_request_new({ request, context in
            Unmanaged<HTTPClientConnection>.fromOpaque(context!).takeUnretainedValue().finished(request)
        }, context) else { return finished(nil) }
        let output = evhttp_request_get_output_headers(request)
        evhttp_add_header(output, "Host", host)
        for (name, value) in headers { evhttp_add_header(output, name, value) }
        if !body.isEmpty {
            evhttp_add_header(output, "Content-Type", "application/json")
            body.withUnsafeBytes { _ = evbuffer_add(evhttp_request_get_output_buffer(request), $0.baseAddress, $0.count) }
        }
        let command: evhttp_cmd_type = switch method {
        case "POST": EVHTTP_REQ_POST
        case "PUT": EVHTTP_REQ_PUT
        case "PATCH": EVHTTP_REQ_PATCH
        case "DELETE": EVHTTP_REQ_DELETE
        default: EVHTTP_REQ_GET
        }
        if evhttp_make_request(connection, request, command, path) != 0 { return finished(nil) }
        noDelay()
    }

    /// Small requests go out at once, not after the peer's delayed ACK
    /// (Nagle's algorithm): each request is a complete message.
    private func noDelay() {
        let socket = bufferevent_getfd(evhttp_connection_get_bufferevent(connection))
        guard socket >= 0, socket != tunedSocket else { return }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        tunedSocket = socket
    }

    private func finished(_ request: OpaquePointer?) {
        let completion = pending
        pending = nil
        guard let request, evhttp_request_get_response_code(request) > 0 else {
            completion?(Response(status: 0, body: [], retryAfterSeconds: nil))
            return
        }
        let buffer = evhttp_request_get_input_buffer(request)
        let count = evbuffer_get_length(buffer)
        let body = [UInt8](unsafeUninitializedCapacity: count) { bytes, initialized in
            initialized = max(0, Int(evbuffer_copyout(buffer, bytes.baseAddress, count)))
        }
        let retryAfter = evhttp_find_header(evhttp_request_get_input_headers(request), "Retry-After")
            .flatMap { Int(String(cString: $0)) }
        completion?(Response(status: Int(evhttp_request_get_response_code(request)), body: body, retryAfterSeconds: retryAfter))
    }
}
