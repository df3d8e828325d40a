import Synchronization

/// Counts the server's open connections, in all and per peer address, over
/// every loop. A flood of connections (slowloris, or plain many) is turned
/// away at the door instead of taking the descriptors and memory that real
/// clients need. Peers that are trusted proxies count only towards the total:
/// every client behind them shares their address.
public final class ConnectionGate: Sendable {
    public enum Refusal: Sendable, Equatable {
        case serverFull, addressFull
    }

    public let connectionsMax: Int
    public let perAddressMax: Int
    private let sharesAddress: @Sendable (String) -> Bool
    private let counts = Mutex(Counts())

    private struct Counts {
        var total = 0
        var byAddress: [String: Int] = [:]
    }

    /// `sharesAddress`: true for a peer that stands for many clients (a
    /// trusted proxy); it is exempt from the per-address cap.
    public init(connectionsMax: Int, perAddressMax: Int, sharesAddress: @escaping @Sendable (String) -> Bool = { _ in false }) {
        precondition(connectionsMax >= 1 && perAddressMax >= 1)
        self.connectionsMax = connectionsMax
        self.perAddressMax = perAddressMax
        self.sharesAddress = sharesAddress
    }

    /// Counts a new connection from `address`, or says why it may not open.
    public func admit(_ address: String) -> Refusal? {
        let shared = sharesAddress(address)
        return counts.withLock { counts in
            guard counts.total < connectionsMax else { return .serverFull }
            if !shared {
                let fromAddress = counts.byAddress[address, default: 0]
                guard fromAddress < perAddressMax else { return .addressFull }
                counts.byAddress[address] = fromAddress + 1
            }
            counts.total += 1
            return nil
        }
    }

    /// Uncounts a connection that `admit` let in.
    public func release(_ address: String) {
        let shared = sharesAddress(address)
        counts.withLock { counts in
            counts.total -= 1
            guard !shared, let fromAddress = counts.byAddress[address] else { return }
            if fromAddress <= 1 { counts.byAddress[address] = nil } else { counts.byAddress[address] = fromAddress - 1 }
        }
    }

    public var openConnections: Int { counts.withLock { $0.total } }

    public func openConnections(from address: String) -> Int { counts.withLock { $0.byAddress[address, default: 0] } }
}
