import CEvent
import EventLoops
import Glibc

/// One client connection on one loop: reads requests from its bufferevent
/// with HTTPRequestParser, hands each to the server's handler as an
/// HTTPExchange, and writes the answers.
///
/// One request at a time: the next is read only once the current one is
/// answered, so pipelined requests are answered in order, and what waits
/// meanwhile in the input buffer is bounded (`pipelinedBytesMax`). Touched
/// on its loop only.
final class HTTPConnection {
    unowned let server: HTTPServer
    let address: String
    /// Set when the gate refused it: its one request is answered 503.
    let refusal: ConnectionGate.Refusal?
    private(set) var buffer: OpaquePointer?
    private let parser: HTTPRequestParser
    private let limits: HTTPLimits
    /// The request being answered.
    private(set) var current: HTTPExchange?
    /// The last exchange answered, reused for the next request if nothing
    /// else holds it by then (nearly always).
    private var spareExchange: HTTPExchange?
    /// Monotonic time by which the request under way must be whole; 0: none.
    var requestDeadlineMicros: Int64 = 0
    private(set) var lastActivityMicros = monotonicMicros()
    /// Answer written: close once it is out. Lingering: reading and dropping
    /// what the client still sends, so it sees the answer, not a reset.
    private var closeAfterWrite = false
    private(set) var lingerUntilMicros: Int64 = 0
    private var parsing = false
    /// The client has closed its side: nothing more will be read.
    private var peerClosed = false
    private var continueSent = false
    private var flushed: ((Bool) -> Void)?
    /// The parser met a method it does not know: the rest of the request
    /// line is awaited, so the answer can name the methods its path takes.
    private var awaitingRequestLine = false
    /// Answers the client has not read yet are over `pipelinedBytesMax`:
    /// the next request waits until they have left, so a client that
    /// pipelines without reading cannot make the server queue answers.
    private var readAfterDrain = false

    init(server: HTTPServer, fd: Int32, address: String, refusal: ConnectionGate.Refusal?, limits: HTTPLimits,
         base: OpaquePointer) {
        self.server = server
        self.address = address
        self.refusal = refusal
        self.limits = limits
        parser = HTTPRequestParser(limits: .init(headersBytesMax: limits.headersBytesMax, bodyBytesMax: limits.bodyBytesMax))
        buffer = bufferevent_socket_new(base, fd, Int32(BEV_OPT_CLOSE_ON_FREE.rawValue))
        guard let buffer else { return }
        let context = Unmanaged.passUnretained(self).toOpaque()
        bufferevent_setcb(buffer, { _, context in
            Unmanaged<HTTPConnection>.fromOpaque(context!).takeUnretainedValue().readable()
        }, { _, context in
            Unmanaged<HTTPConnection>.fromOpaque(context!).takeUnretainedValue().drained()
        }, { _, events, context in
            Unmanaged<HTTPConnection>.fromOpaque(context!).takeUnretainedValue().event(events)
        }, context)
        _ = bufferevent_enable(buffer, Int16(EV_READ | EV_WRITE))
    }

    var isOpen: Bool { buffer != nil }
    var isBusy: Bool { current != nil || parser.isMidRequest }
    var isStreaming: Bool { current?.isStreaming ?? false }

    // MARK: reading

    private func readable() {
        lastActivityMicros = monotonicMicros()
        guard let buffer else { return }
        if lingerUntilMicros != 0 {
            let input = bufferevent_get_input(buffer)
            _ = evbuffer_drain(input, evbuffer_get_length(input))
            return
        }
        if current == nil { readRequests() }
    }

    /// Parses what the input holds until a request is under way, the input
    /// is used up, or the connection is done.
    private func readRequests() {
        guard !awaitingRequestLine else { return readUnknownMethodLine() }
        guard !parsing else { return }
        parsing = true
        defer { parsing = false }
        while current == nil, !closeAfterWrite, !readAfterDrain, let buffer {
            let input = bufferevent_get_input(buffer)
            guard evbuffer_get_length(input) > 0 else { break }
            if requestDeadlineMicros == 0 { requestDeadlineMicros = monotonicMicros() + server.requestDeadlineSpanMicros }
            var chunk = iovec()  // evbuffer_iovec is the system iovec here
            guard evbuffer_peek(input, -1, nil, &chunk, 1) >= 1 else { break }
            let (consumed, result) = parser.feed(UnsafeRawBufferPointer(start: chunk.iov_base, count: chunk.iov_len))
            _ = evbuffer_drain(input, consumed)
            switch result {
            case .incomplete:
                if parser.expectsContinue, !continueSent {
                    continueSent = true
                    write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
                if consumed == 0 { return }
            case .request:
                guard let request = parser.request else { return }
                parser.resume()
                continueSent = false
                if refusal == nil { requestDeadlineMicros = 0 }
                dispatch(exchange(for: request))
            case .failed(.unknownMethod):
                awaitingRequestLine = true
                return readUnknownMethodLine()
            case .failed(let failure):
                dispatch(HTTPExchange(failure: failure, connection: self))
                return
            }
        }
    }

    /// After an unknown method: once the request line is whole, answers it
    /// with its target (a 405 naming the path's methods, or a 404).
    private func readUnknownMethodLine() {
        guard current == nil, !closeAfterWrite, let buffer else { return }
        let input = bufferevent_get_input(buffer)
        var eolLength = 0
        let found = evbuffer_search_eol(input, nil, &eolLength, EVBUFFER_EOL_LF)
        guard found.pos >= 0 else {
            if evbuffer_get_length(input) > limits.headersBytesMax {
                awaitingRequestLine = false
                dispatch(HTTPExchange(failure: .headersTooLarge, connection: self))
            }
            return
        }
        let line = UnsafeRawBufferPointer(start: evbuffer_pullup(input, found.pos), count: found.pos)
        let target = HTTPRequestParser.targetOfRequestLine(line)
        // Answered once: the line is used up, and the connection closes
        // after the answer.
        _ = evbuffer_drain(input, found.pos + eolLength)
        awaitingRequestLine = false
        dispatch(HTTPExchange(failure: .unknownMethod, target: target, connection: self))
    }

    private func exchange(for request: HTTPRequest) -> HTTPExchange {
        guard isKnownUniquelyReferenced(&spareExchange), let spare = spareExchange, spare.isAnswered, !spare.isStreaming else {
            return HTTPExchange(request: request, connection: self)
        }
        spare.reuse(for: request)
        return spare
    }

    private func dispatch(_ exchange: HTTPExchange) {
        current = exchange
        // While it is answered, pipelined bytes wait, up to a bound.
        if let buffer { bufferevent_setwatermark(buffer, Int16(EV_READ), 0, limits.pipelinedBytesMax) }
        server.handle(exchange)
    }

    // MARK: writing

    /// Writes after whatever is already waiting (through the bufferevent).
    func write(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { write($0) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) {
        guard let buffer else { return }
        _ = bufferevent_write(buffer, bytes.baseAddress, bytes.count)
    }

    /// An answer: its head, then its body. They go straight to the socket,
    /// in one call, when nothing waits before them (the usual case): through
    /// the bufferevent they would cost three more system calls (a write event
    /// added, woken for, removed). What the kernel does not take waits in the
    /// output buffer as before, in order; a shared body is referenced there,
    /// not copied.
    func write(_ head: UnsafeRawBufferPointer, then body: UnsafeRawBufferPointer, sharing shared: SharedBytes? = nil) {
        guard let buffer else { return }
        let output = bufferevent_get_output(buffer)
        var sent = evbuffer_get_length(output) == 0 ? DirectSend.now(bufferevent_getfd(buffer), head, body) : 0
        if sent < head.count {
            _ = bufferevent_write(buffer, head.baseAddress! + sent, head.count - sent)
            sent = 0
        } else {
            sent -= head.count
        }
        guard sent < body.count else { return }
        let rest = UnsafeRawBufferPointer(rebasing: body[sent...])
        guard let shared else {
            _ = bufferevent_write(buffer, rest.baseAddress, rest.count)
            return
        }
        let retained = Unmanaged.passRetained(shared)
        let added = evbuffer_add_reference(output, rest.baseAddress, rest.count, { _, _, context in
            Unmanaged<SharedBytes>.fromOpaque(context!).release()
        }, retained.toOpaque())
        if added != 0 {
            retained.release()
            _ = bufferevent_write(buffer, rest.baseAddress, rest.count)
        }
    }

    /// The current exchange has written all of its answer.
    func finished(_ exchange: HTTPExchange, keepOpen: Bool) {
        guard exchange === current else { return }
        current = nil
        exchange.releaseRequest()
        spareExchange = exchange
        lastActivityMicros = monotonicMicros()
        guard let buffer else { return }
        // Closing after this answer: asked for, or the client has already
        // closed its side (`event`). An answer sent whole leaves nothing to
        // drain, so no write callback would come to close it: close here.
        guard keepOpen, !closeAfterWrite else {
            closeAfterWrite = true
            if evbuffer_get_length(bufferevent_get_output(buffer)) == 0 { drained() }
            return
        }
        guard evbuffer_get_length(bufferevent_get_output(buffer)) <= limits.pipelinedBytesMax else {
            readAfterDrain = true  // reading stays bounded by the watermark meanwhile
            return
        }
        bufferevent_setwatermark(buffer, Int16(EV_READ), 0, 0)
        readRequests()
    }

    /// Runs `done` once what is written so far has left (true), or when the
    /// connection closes first (false): paces a streaming producer.
    func whenFlushed(_ done: @escaping (Bool) -> Void) {
        guard let buffer else { return done(false) }
        guard evbuffer_get_length(bufferevent_get_output(buffer)) > 0 else { return done(true) }
        precondition(flushed == nil, "one flush at a time")
        flushed = done
    }

    private func drained() {
        lastActivityMicros = monotonicMicros()
        if let done = flushed {
            flushed = nil
            done(true)
        }
        if readAfterDrain, current == nil, let buffer {
            readAfterDrain = false
            bufferevent_setwatermark(buffer, Int16(EV_READ), 0, 0)
            readRequests()
        }
        guard closeAfterWrite, lingerUntilMicros == 0, let buffer else { return }
        if peerClosed { return close() }
        // The answer is out: stop sending, and read (and drop) what the
        // client may still be sending for a moment, then close.
        shutdown(bufferevent_getfd(buffer), Int32(SHUT_WR))
        lingerUntilMicros = monotonicMicros() + Int64(limits.lingerMillis) * 1000
        bufferevent_setwatermark(buffer, Int16(EV_READ), 0, 0)
        readable()
    }

    private func event(_ events: Int16) {
        let unsent = buffer.map { evbuffer_get_length(bufferevent_get_output($0)) } ?? 0
        if events & Int16(BEV_EVENT_EOF) != 0, !isStreaming, lingerUntilMicros == 0, current != nil || unsent > 0 {
            // The client is done sending but may still read the answer
            // (being made, or written and not yet sent): close once it is out.
            peerClosed = true
            closeAfterWrite = true
            return
        }
        close()
    }

    // MARK: closing

    /// Closes at once; what is in flight is told (a stream stops).
    func close() {
        guard let buffer else { return }
        self.buffer = nil
        bufferevent_free(buffer)
        if let done = flushed {
            flushed = nil
            done(false)
        }
        current?.connectionClosed()
        server.closed(self)
    }
}
