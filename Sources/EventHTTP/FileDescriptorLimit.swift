import Glibc

/// The process's open-file limit. Every connection is a descriptor, and the
/// default soft limit (often 1 024) is far below what a surge opens.
public enum FileDescriptorLimit {
    /// Raises the soft limit to the hard one and returns the soft limit now
    /// in force.
    @discardableResult
    public static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, rlim_t(Int32.max)))
    }
}
