import CEvent
import EventLoops
import Glibc

/// Limits of the HTTP layer (STYLE.md: a limit on everything, unit last).
public struct HTTPLimits: Sendable {
    /// Request line plus headers; past it, 431.
    public var headersBytesMax = 8 * 1024
    /// The largest body any route takes (admin slot uploads); past it, 413
    /// before the body is read. Routes check their own, smaller limits.
    public var bodyBytesMax = 4 * 1024 * 1024
    /// Bytes of pipelined requests kept waiting while one is answered.
    public var pipelinedBytesMax = 64 * 1024
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
    /// After a closing answer, what the client still sends is read and
    /// dropped for this long, so it sees the answer rather than a reset.
    public var lingerMillis = 1_000
    /// Connections one loop accepts before it turns to its other events: a
    /// burst of thousands must not hold every request on the loop.
    public var acceptBurstMax = 64

    public init() {}
}

/// HTTP/1.1 on one loop, on its own listener: libevent for the sockets
/// (evconnlistener, bufferevents), http_parser for the requests
/// (HTTPRequestParser), answers written here (HTTPExchange).
///
/// Owning this layer rather than using evhttp gives every answer to the
/// application, refusals of the layer itself included (bad requests, headers
/// or bodies over their limits, unknown methods), so each one is
/// problem+json; and a connection over the caps is counted at accept,
/// before anything is allocated for it.
public final class HTTPServer {
    public typealias Handler = (HTTPExchange) -> Void

    private let loop: EventLoop
    private let handler: Handler
    private let limits: HTTPLimits
    private let gate: ConnectionGate
    private var listener: OpaquePointer?
    private var context: Unmanaged<HTTPServer>?
    private var connections: [ObjectIdentifier: HTTPConnection] = [:]
    private var resumeEvent: OpaquePointer?
    private var sweepTimer: LoopTimer?
    private var refusedLingering = 0
    private var acceptedThisTurn = 0
    private var acceptPaused = false
    private var dateSecond = -1
    /// The Date header of this second (RFC 9110 §6.6.1).
    private(set) var date = ""
    /// The buffers answers' heads and written bodies are made in
    /// (HTTPExchange): taken and given back around each answer, on the loop.
    var headBuffers = LentBuffer(keptCapacityMax: 4_096)
    var bodyBuffers = LentBuffer(keptCapacityMax: 64 * 1_024)
    let requestDeadlineSpanMicros: Int64
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
        requestDeadlineSpanMicros = Int64(limits.requestDeadlineSeconds) * 1_000_000
        let context = Unmanaged.passRetained(self)
        self.context = context
        listener = evconnlistener_new(loop.eventBase, { _, fd, address, length, context in
            Unmanaged<HTTPServer>.fromOpaque(context!).takeUnretainedValue().accepted(fd, address, length)
        }, context.toOpaque(), LEV_OPT_CLOSE_ON_FREE, -1, listenerFD)
        guard listener != nil else {
            context.release()
            self.context = nil
            throw SocketError(call: "evconnlistener_new", errno: errno)
        }
        resumeEvent = event_new(loop.eventBase, -1, 0, { _, _, context in
            Unmanaged<HTTPServer>.fromOpaque(context!).takeUnretainedValue().resumeAccepting()
        }, context.toOpaque())
        sweepTimer = loop.schedule(everyMillis: 250) { [unowned self] in sweep() }
        refreshDate()
    }

    /// Stops taking new connections (closes the listener); requests on open
    /// connections go on. On the loop thread.
    public func stopAccepting() {
        loop.preconditionInLoop()
        if let listener { evconnlistener_free(listener) }
        listener = nil
    }

    // MARK: connections

    private func accepted(_ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: Int32) {
        let peer = Self.addressText(address)
        let refusal = gate.admit(peer)
        if let refusal {
            guard refusedLingering < limits.refusedLingeringMax else {
                connectionEnded?(.closedUnanswered(refusal))
                Glibc.close(fd)
                return
            }
            refusedLingering += 1
            connectionEnded?(.refused(refusal))
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let connection = HTTPConnection(server: self, fd: fd, address: peer, refusal: refusal, limits: limits,
                                        base: loop.eventBase)
        guard connection.isOpen else {
            Glibc.close(fd)
            return release(peer, refusal)
        }
        if refusal != nil {
            connection.requestDeadlineMicros = monotonicMicros() + Int64(limits.refusedLingerMillis) * 1000
        }
        connections[ObjectIdentifier(connection)] = connection
        // The listener checks after each accept whether it is still enabled:
        // pausing it ends this burst; the resume event runs after the events
        // already waiting (requests on open connections).
        acceptedThisTurn += 1
        if acceptedThisTurn == 1 { event_active(resumeEvent, 0, 0) }
        if acceptedThisTurn >= limits.acceptBurstMax, let listener {
            evconnlistener_disable(listener)
            acceptPaused = true
        }
    }

    private func resumeAccepting() {
        acceptedThisTurn = 0
        if acceptPaused, let listener { evconnlistener_enable(listener) }
        acceptPaused = false
    }

    func handle(_ exchange: HTTPExchange) {
        handler(exchange)
    }

    /// A connection has closed (from `HTTPConnection.close`).
    func closed(_ connection: HTTPConnection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        release(connection.address, connection.refusal)
    }

    private func release(_ address: String, _ refusal: ConnectionGate.Refusal?) {
        if refusal == nil { gate.release(address) } else { refusedLingering -= 1 }
    }

    /// Every 250 ms: closes connections whose request is overdue, idle ones,
    /// and lingering ones whose moment is over.
    private func sweep() {
        refreshDate()
        let now = monotonicMicros()
        let idleMicros = Int64(limits.idleTimeoutSeconds) * 1_000_000
        var ending: [(HTTPConnection, Bool)] = []
        for connection in connections.values {
            if connection.lingerUntilMicros != 0 {
                if connection.lingerUntilMicros < now { ending.append((connection, false)) }
            } else if connection.isStreaming || connection.current != nil && connection.requestDeadlineMicros == 0 {
                continue  // answering: busy, not late, whatever the client sends meanwhile
            } else if connection.requestDeadlineMicros != 0 && connection.requestDeadlineMicros < now {
                ending.append((connection, connection.refusal == nil))
            } else if !connection.isBusy && now - connection.lastActivityMicros > idleMicros {
                ending.append((connection, false))
            }
        }
        for (connection, late) in ending {
            if late { connectionEnded?(.deadlineMissed) }
            connection.close()
        }
    }

    private func refreshDate() {
        let now = time(nil)
        guard Int(now) != dateSecond else { return }
        dateSecond = Int(now)
        date = HTTPDate.format(epochSeconds: Int(now))
    }

    /// Stops accepting and closes every connection; on the loop thread.
    public func close() {
        loop.preconditionInLoop()
        stopAccepting()
        sweepTimer?.cancel()
        sweepTimer = nil
        for connection in Array(connections.values) { connection.close() }
        connections.removeAll()
        if let resumeEvent { event_free(resumeEvent) }
        resumeEvent = nil
        context?.release()
        context = nil
    }

    static func addressText(_ address: UnsafeMutablePointer<sockaddr>?) -> String {
        guard let address else { return "" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { inet in
                var raw = inet.pointee.sin_addr
                _ = inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
            }
        case AF_INET6:
            address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { inet in
                var raw = inet.pointee.sin6_addr
                _ = inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
            }
        default: return ""
        }
        return String(cString: text)
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

/// One byte buffer, lent for one answer at a time and given back, so answers
/// reuse one allocation instead of making their own.
struct LentBuffer {
    private var spare: [UInt8] = []
    /// A buffer grown past this (a long answer) is not kept.
    let keptCapacityMax: Int

    init(keptCapacityMax: Int) { self.keptCapacityMax = keptCapacityMax }

    /// The spare buffer, emptied (or a new one when it is lent already).
    mutating func take() -> [UInt8] {
        var taken: [UInt8] = []
        swap(&taken, &spare)
        taken.removeAll(keepingCapacity: true)
        return taken
    }

    mutating func giveBack(_ buffer: [UInt8]) {
        if buffer.capacity <= keptCapacityMax { spare = buffer }
    }
}

/// The HTTP-date of RFC 9110 (IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
public enum HTTPDate {
    public static func format(epochSeconds: Int) -> String {
        var seconds = time_t(epochSeconds)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        var text = [CChar](repeating: 0, count: 64)
        let count = strftime(&text, text.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: text.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
