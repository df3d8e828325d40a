import EventHTTP
import EventLoops
import Foundation
import Synchronization

/// A request a workload wants sent, and when it was meant to go (latency
/// is measured from then: an open-loop run that falls behind shows it).
struct PlannedRequest {
    var method = "POST"
    var path: String
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var intendedMicros: Int64
    /// The workload's own reference (a citizen's index).
    var tag = 0
}

/// One thread's share of a scenario. Lives on that thread's loop only.
protocol Workload: AnyObject {
    /// The next request to send now, if one is due.
    func next(nowMicros: Int64) -> PlannedRequest?
    func completed(_ request: PlannedRequest, _ answer: Answer, nowMicros: Int64)
    /// True once nothing more will ever be sent.
    var isFinished: Bool { get }
}

/// Runs workloads on `threads` event loops with `connections` keep-alive
/// connections each: no thread or process per request. Idle connections
/// take due requests as soon as one completes, and on a 1 ms tick.
final class Driver: Sendable {
    /// The servers' addresses: a thread's connections take them in turn,
    /// so citizens are spread over every front node.
    let endpoints: [Endpoint]
    let recorder: Recorder
    private let deadlineMicros: Int64

    init(endpoints: [Endpoint], recorder: Recorder, deadlineMicros: Int64) {
        precondition(!endpoints.isEmpty, "a load needs a server")
        self.endpoints = endpoints
        self.recorder = recorder
        self.deadlineMicros = deadlineMicros
        sent = Mutex(Array(repeating: 0, count: endpoints.count))
    }

    private let sent: Mutex<[Int]>

    /// Requests sent to each endpoint, once `run` has returned.
    var sentPerEndpoint: [Int] { sent.withLock { $0 } }

    fileprivate func count(_ perConnection: [Int]) {
        sent.withLock { sent in
            for (index, count) in perConnection.enumerated() { sent[index % sent.count] += count }
        }
    }

    convenience init(host: String, port: UInt16, recorder: Recorder, deadlineMicros: Int64) {
        self.init(endpoints: [Endpoint(host: host, port: port)], recorder: recorder, deadlineMicros: deadlineMicros)
    }

    /// Blocks until every workload is finished (or the deadline passes)
    /// and every request in flight has its answer.
    func run(workloads: [Workload], connectionsPerThread: Int) {
        let done = DispatchGroup()
        for (index, workload) in workloads.enumerated() {
            done.enter()
            let loop = EventLoop(index: index, preciseTimers: true)
            let box = Unchecked(workload)
            _ = loop.execute { [self] in
                ThreadRun(loop: loop, workload: box.value, driver: self, connections: connectionsPerThread) {
                    loop.stop()
                }.start()
            }
            let thread = Thread {
                loop.run()
                done.leave()
            }
            thread.name = "allot-load-\(index)"
            thread.start()
        }
        done.wait()
    }

    /// One loop's connections and its pump.
    private final class ThreadRun {
        let loop: EventLoop
        let workload: Workload
        unowned let driver: Driver
        var connections: [HTTPClientConnection] = []
        /// A connection whose request failed in transport (its node is down)
        /// rests a while, as a load balancer would take a dead node out:
        /// else it fails at once and takes every request due.
        var restingUntil: [Int64] = []
        static let restMicros: Int64 = 200_000
        let finished: () -> Void
        var timer: LoopTimer?
        var inFlight = 0
        var over = false
        var closing = false
        var keepAlive: ThreadRun?
        var nextConnection = 0
        var sentPerConnection: [Int]

        init(loop: EventLoop, workload: Workload, driver: Driver, connections: Int, finished: @escaping () -> Void) {
            self.loop = loop
            self.workload = workload
            self.driver = driver
            self.finished = finished
            self.connections = (0..<connections).map { index in
                let endpoint = driver.endpoints[index % driver.endpoints.count]
                return HTTPClientConnection(loop: loop, host: endpoint.host, port: endpoint.port)
            }
            restingUntil = Array(repeating: 0, count: connections)
            sentPerConnection = Array(repeating: 0, count: connections)
        }

        func start() {
            keepAlive = self
            timer = loop.schedule(everyMillis: 1) { [unowned self] in pump() }
            pump()
        }

        func pump() {
            let now = monotonicMicros()
            if !over && (workload.isFinished || now >= driver.deadlineMicros) { over = true }
            if !over {
                // In turn from after the last one used: at a rate the first
                // idle connection could carry alone, every node still gets
                // its share (connections take the endpoints in turn).
                let first = nextConnection
                for step in 0..<connections.count {
                    let index = (first + step) % connections.count
                    guard !connections[index].isBusy, restingUntil[index] <= now else { continue }
                    guard let request = workload.next(nowMicros: now) else { break }
                    send(request, on: index)
                }
            }
            if over && inFlight == 0 && !closing {
                closing = true
                timer?.cancel()
                // Torn down from the loop's inbox, not from inside the timer's
                // or a connection's own callback.
                let me = Unchecked(self)
                _ = loop.execute {
                    let run = me.value
                    run.driver.count(run.sentPerConnection)
                    run.connections.removeAll()
                    run.timer = nil
                    run.keepAlive = nil
                    run.finished()
                }
            }
        }

        func send(_ request: PlannedRequest, on index: Int) {
            inFlight += 1
            nextConnection = index + 1
            sentPerConnection[index] += 1
            connections[index].send(method: request.method, path: request.path, headers: request.headers, body: request.body) {
                [unowned self] response in
                inFlight -= 1
                let now = monotonicMicros()
                let answer = Answer(response)
                if answer.status == 0, index < restingUntil.count { restingUntil[index] = now + Self.restMicros }
                driver.recorder.record(outcome: answer.label, latencyMicros: now - request.intendedMicros, atMicros: now)
                workload.completed(request, answer, nowMicros: now)
                pump()
            }
        }
    }
}

/// Hands a value to the one thread that will own it.
struct Unchecked<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
