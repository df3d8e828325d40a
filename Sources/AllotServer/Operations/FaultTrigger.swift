import Glibc

/// A crash at one exact point of the work, for the cluster fault schedule
/// (scripts/cluster-faults.sh): from outside, a `kill -9` cannot be timed to
/// land between two Redis replies. Off unless `allot serve` is started with
/// `ALLOT_FAULT_KILL_AFTER_DEBIT` naming a file; creating that file arms it,
/// and the node removes it and kills itself with SIGKILL the next time a
/// move's debit has taken places and before its credit is sent.
public struct FaultTrigger: Sendable {
    public let path: String

    public init?(path: String?) {
        guard let path, !path.isEmpty else { return nil }
        self.path = path
    }

    /// Dies here if armed. `unlink` both tests and disarms, so one arming
    /// kills one node once; unarmed, this is one failed system call.
    func fireIfArmed() {
        guard unlink(path) == 0 else { return }
        kill(getpid(), SIGKILL)
    }
}
