import AllotDomain
import EventHTTP

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

    static func text(_ status: Int, _ text: String) -> Answer {
        Answer(status: status, contentType: "text/plain; charset=utf-8", headers: [], body: Array(text.utf8))
    }
}

extension HTTPExchange {
    func send(_ answer: Answer) {
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
