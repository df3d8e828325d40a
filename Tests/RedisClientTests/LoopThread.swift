import EventLoops
import Foundation

/// An event loop on its own thread; `sync` runs a block on it and waits.
final class LoopThread: @unchecked Sendable {
    let loop = EventLoop(index: 0)
    private let thread: Thread

    init() {
        let loop = loop
        thread = Thread { loop.run() }
        thread.start()
    }

    func sync<T>(_ body: @escaping () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: T?
        nonisolated(unsafe) let body = body  // run on the loop while this thread waits
        _ = loop.execute {
            result = body()
            done.signal()
        }
        done.wait()
        return result!
    }

    func stop() { _ = loop.execute { [loop] in loop.stop() } }
}
