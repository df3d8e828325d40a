import Glibc

/// Microseconds on the monotonic clock: for deadlines and durations, never
/// for times shown to anyone (those come from Redis's or the wall clock).
public func monotonicMicros() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
}
