import EventHTTP
import EventLoops
import Foundation
import Glibc

/// Slowloris from one address: it holds as many connections as it can, each
/// trickling a request that never ends (one byte a second), and opens a new
/// connection, at most once a second per place, whenever the server closes
/// one. It runs beside the real load, which measures what is left for real
/// clients. The attack comes from its own loopback address, so that the
/// server's per-address cap can tell it from the real clients on 127.0.0.1.
final class SlowAttacker: @unchecked Sendable {
    struct Counts {
        var connectsStarted = 0
        var connectFailures = 0
        var answered503 = 0
        var closedByServer = 0
        var heldAtEnd = 0
        var heldMax = 0
    }

    private let sourceAddress: String
    private let host: String
    private let port: UInt16
    private let connectionsWanted: Int
    private let lock = NSLock()
    private var running = true
    private var counts = Counts()
    private let finished = DispatchSemaphore(value: 0)

    init(connections: Int, sourceAddress: String, host: String, port: UInt16) {
        connectionsWanted = connections
        self.sourceAddress = sourceAddress
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = port
    }

    func start() {
        let thread = Thread { [self] in
            attack()
            finished.signal()
        }
        thread.name = "slow-attacker"
        thread.start()
    }

    /// Stops the attack, closes its connections and returns what happened.
    func stop() -> Counts {
        lock.withLock { running = false }
        finished.wait()
        return lock.withLock { counts }
    }

    private func attack() {
        var sockets = [Int32](repeating: -1, count: connectionsWanted)
        var reconnectAfter = [Int64](repeating: 0, count: connectionsWanted)
        let request = Array("GET /healthz HTTP/1.1\r\nHost: allot\r\nX-Slow: ".utf8)
        var sentBytes = [Int](repeating: 0, count: connectionsWanted)
        var scratch = [UInt8](repeating: 0, count: 512)
        while lock.withLock({ running }) {
            let roundStart = monotonicMicros()
            var held = 0
            var round = Counts()
            for index in sockets.indices {
                var fd = sockets[index]
                if fd >= 0 {
                    // Anything from the server means it answered (503) or closed.
                    let count = recv(fd, &scratch, scratch.count, Int32(MSG_DONTWAIT))
                    if count >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
                        if count > 0, scratch.starts(with: Array("HTTP/1.1 503".utf8)) { round.answered503 += 1 }
                        round.closedByServer += 1
                        close(fd)
                        sockets[index] = -1
                        reconnectAfter[index] = roundStart + 1_000_000
                        continue
                    }
                } else if roundStart >= reconnectAfter[index] {
                    fd = ConnectingSocket.open(from: sourceAddress, to: host, port: port, nonBlocking: true)
                    round.connectsStarted += 1
                    if fd < 0 {
                        round.connectFailures += 1
                        reconnectAfter[index] = roundStart + 1_000_000
                        continue
                    }
                    sockets[index] = fd
                    sentBytes[index] = 0
                    continue
                } else {
                    continue
                }
                // One more byte of a request that never ends.
                let byte: UInt8 = sentBytes[index] < request.count ? request[sentBytes[index]] : UInt8(ascii: "a")
                var one = byte
                if send(fd, &one, 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) == 1 { sentBytes[index] += 1 }
                held += 1
            }
            lock.withLock {
                counts.connectsStarted += round.connectsStarted
                counts.connectFailures += round.connectFailures
                counts.answered503 += round.answered503
                counts.closedByServer += round.closedByServer
                counts.heldAtEnd = held
                counts.heldMax = max(counts.heldMax, held)
            }
            let spent = monotonicMicros() - roundStart
            if spent < 1_000_000 { usleep(UInt32(1_000_000 - spent)) }
        }
        for fd in sockets where fd >= 0 { close(fd) }
    }
}

extension SlowAttacker.Counts {
    var asCounters: [String: Int] {
        ["slow_connects_started": connectsStarted, "slow_connect_failures": connectFailures,
         "slow_answered_503": answered503, "slow_closed_by_server": closedByServer,
         "slow_held_at_end": heldAtEnd, "slow_held_max": heldMax]
    }
}
