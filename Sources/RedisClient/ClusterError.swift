/// What a cluster error reply asks the client to do (the specification's
/// redirections and transient states). Pure.
public enum ClusterError: Equatable, Sendable {
    /// The slot has moved for good: update the map, resend there.
    case moved(slot: Int, to: ClusterNodeAddress)
    /// The slot is migrating: send `ASKING` and the command to that node,
    /// once, without changing the map.
    case ask(slot: Int, to: ClusterNodeAddress)
    /// A multi-key command's keys are split during a migration: retry soon.
    case tryAgain
    /// The cluster cannot serve the slot now (no owner, a failover): back
    /// off and retry.
    case clusterDown
    /// The node is loading its data: back off and retry.
    case loading
    /// A write reached a replica (a failover demoted the node): refresh the
    /// map and retry.
    case readOnly

    /// Nil for any other error (a script's own, a wrong type…).
    public init?(errorMessage message: String) {
        let words = message.split(separator: " ", maxSplits: 3)
        switch words.first {
        case "MOVED", "ASK":
            guard words.count == 3, let slot = Int(words[1]), (0..<ClusterSlot.count).contains(slot),
                  let address = ClusterNodeAddress(parsing: words[2]) else { return nil }
            self = words[0] == "MOVED" ? .moved(slot: slot, to: address) : .ask(slot: slot, to: address)
        case "TRYAGAIN": self = .tryAgain
        case "CLUSTERDOWN": self = .clusterDown
        case "LOADING": self = .loading
        case "READONLY": self = .readOnly
        default: return nil
        }
    }
}
