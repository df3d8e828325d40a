import AllotDomain
import EventHTTP
import EventLoops

/// A finished HTTP answer, built off the loop if need be and sent on it.
struct Answer: Sendable {
    static let jsonType = "application/json; charset=utf-8"
    static let problemType = "application/problem+json"

    var status: Int
    var contentType: String
    var headers: [(String, String)]
    var body: [UInt8]
    /// A cached body sent by reference instead of `body`.
    var sharedBody: SharedBytes? = nil

    static func json(_ status: Int, _ body: [UInt8], headers: [(String, String)] = []) -> Answer {
        Answer(status: status, contentType: jsonType, headers: headers, body: body)
    }

    static func json(_ status: Int, shared: SharedBytes) -> Answer {
        Answer(status: status, contentType: jsonType, headers: [], body: [], sharedBody: shared)
    }

    static func problem(_ problem: Problem) -> Answer {
        Answer(status: problem.status, contentType: problemType, headers: problem.headers, body: problem.body)
    }

    /// A problem whose body was rendered once, sent by reference.
    static func problem(_ problem: Problem, shared body: SharedBytes) -> Answer {
        Answer(status: problem.status, contentType: problemType, headers: problem.headers, body: [], sharedBody: body)
    }

    static func text(_ status: Int, _ text: String) -> Answer {
        Answer(status: status, contentType: "text/plain; charset=utf-8", headers: [], body: Array(text.utf8))
    }
}

extension HTTPExchange {
    func send(_ answer: Answer) {
        if answer.status == 304 { return respondNotModified(headers: answer.headers) }
        if let shared = answer.sharedBody {
            respond(status: answer.status, contentType: answer.contentType, headers: answer.headers, sharedBody: shared)
        } else {
            respond(status: answer.status, contentType: answer.contentType, headers: answer.headers, body: answer.body)
        }
    }
}

/// A value that belongs to one loop, carried through other threads and
/// opened again only on that loop (SwiftNIO's `NIOLoopBound`).
struct LoopBound<Value>: @unchecked Sendable {
    private let value: Value
    let loop: EventLoop

    init(_ value: Value, loop: EventLoop) {
        loop.preconditionInLoop()
        self.value = value
        self.loop = loop
    }

    var wrapped: Value {
        loop.preconditionInLoop()
        return value
    }
}

/// An exchange answered from another thread (the admin worker, an export):
/// it holds a place in its loop's inbox, taken when the work left the
/// loop, so what comes back always gets to it (EventLoop.reservePlace).
struct PendingExchange: Sendable {
    private let exchange: LoopBound<HTTPExchange>
    private let place: InboxPlace

    /// Nil when the loop's inbox is full: answer `Problem.busy` at once.
    init?(_ exchange: HTTPExchange, loop: EventLoop) {
        guard let place = loop.reservePlace() else { return nil }
        self.exchange = LoopBound(exchange, loop: loop)
        self.place = place
    }

    private init(exchange: LoopBound<HTTPExchange>, place: InboxPlace) {
        self.exchange = exchange
        self.place = place
    }

    var loop: EventLoop { exchange.loop }

    /// Sends the answer, from any thread. Once per exchange.
    func answer(_ answer: Answer) {
        run { $0.send(answer) }
    }

    /// Runs `work` with the exchange on its loop, from any thread. Once.
    func run(_ work: @escaping (HTTPExchange) -> Void) {
        let exchange = exchange, work = UncheckedBox(work)
        place.execute { work.value(exchange.wrapped) }
    }

    /// Runs `work` and keeps a line open for more (a stream): the next place
    /// is taken before this one is used, so a last word (the end of the
    /// stream, or its abort) always gets through. Nil, and `work` not run,
    /// when the inbox is full: this exchange is still usable for that word.
    func runKeepingPlace(_ work: @escaping (HTTPExchange) -> Void) -> PendingExchange? {
        guard let next = loop.reservePlace() else { return nil }
        run(work)
        return PendingExchange(exchange: exchange, place: next)
    }
}
