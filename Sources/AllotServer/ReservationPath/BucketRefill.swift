import AllotDomain
import EventLoops
import Logging
import RedisClient

/// A spread campaign's bucket has no place of a slot a citizen asks for:
/// places are moved into it (PlaceTransfer) from the pool, else from the
/// other buckets, richest first as this loop last saw them, until one move
/// brings some or every source came up empty. One refill at a time per
/// bucket and slot on a loop; attempts that find it empty meanwhile wait
/// for it, and all of them try again once it ends (ReservationDesk).
final class BucketRefill {
    enum Outcome {
        /// Places arrived: the bucket may hold one for the attempt now.
        case moved
        /// No source had a place of the slot, and none was on its way.
        case noneLeft
        /// No source had one, but some were on their way between shards.
        case inTransit
        /// Redis failed on the way (a move left half-way is the sweeper's).
        case failed
    }

    private let redis: any RedisRouting
    private let logger: Logger
    /// `--durability replicated`: a step goes on only once a replica has the
    /// one before (a failover must not keep a debit's places in the source
    /// and hand them to the target too).
    private let replicaAcks: Int
    private let replicaWaitMillis: Int
    private let killAfterDebit: FaultTrigger?
    private var random = BufferedRandom()
    private var waiting: [Key: [(Outcome) -> Void]] = [:]
    /// Moves that brought places, since start (for metrics and tests).
    private(set) var movesMade = 0

    private struct Key: Hashable {
        let campaign: String
        let bucket: Int
        let slot: String
    }

    init(redis: any RedisRouting, logger: Logger, replicaAcks: Int = 0, replicaWaitMillis: Int = 250,
         killAfterDebit: FaultTrigger? = nil) {
        self.redis = redis
        self.killAfterDebit = killAfterDebit
        self.logger = logger
        self.replicaAcks = replicaAcks
        self.replicaWaitMillis = replicaWaitMillis
    }

    /// Refills `bucket` with places of `slot`.
    func refill(_ view: CampaignView, bucket: Int, slot: Slot, done: @escaping (Outcome) -> Void) {
        let key = Key(campaign: view.campaign.id, bucket: bucket, slot: slot.id)
        if waiting[key] != nil { return waiting[key]!.append(done) }
        waiting[key] = [done]
        let others = (0..<view.layout.buckets.count).filter { $0 != bucket }
            .sorted { (view.bucketRemaining[safe: $0]?[slot.id] ?? 0) > (view.bucketRemaining[safe: $1]?[slot.id] ?? 0) }
        let sources: [(PlaceTransfer.Source, PlaceTransfer.Amount)] =
            [(.pool, .places(view.layout.buckets.refillPlaces(capacity: slot.capacity)))] + others.map { (.bucket($0), .half) }
        next(sources[...], view: view, bucket: bucket, slot: slot.id, key: key, inTransit: 0)
    }

    private func next(_ sources: ArraySlice<(PlaceTransfer.Source, PlaceTransfer.Amount)>, view: CampaignView, bucket: Int,
                      slot: String, key: Key, inTransit: Int) {
        guard let (source, amount) = sources.first else { return finish(key, inTransit > 0 ? .inTransit : .noneLeft) }
        let move = PlaceTransfer(id: Self.hex(random.next()) + Self.hex(random.next()), campaign: view.campaign.id,
                                 buckets: view.layout.buckets, slot: slot, source: source, target: bucket)
        run(move, from: .debit(amount)) { [self] ended in
            guard case .done(let moved, let travelling)? = ended else { return finish(key, .failed) }
            guard moved == 0 else {
                movesMade += 1
                return finish(key, .moved)
            }
            next(sources.dropFirst(), view: view, bucket: bucket, slot: slot, key: key, inTransit: inTransit + travelling)
        }
    }

    private func finish(_ key: Key, _ outcome: Outcome) {
        let callers = waiting.removeValue(forKey: key) ?? []
        for done in callers { done(outcome) }
    }

    /// Runs a move to its end on the loop; its last step, nil on failure.
    private func run(_ move: PlaceTransfer, from step: PlaceTransfer.Step, completion: @escaping (PlaceTransfer.Step?) -> Void) {
        guard let request = move.request(for: step) else { return completion(step) }
        redis.run(request.function, slot: request.slot, keys: request.keys, arguments: request.arguments) { [self] result in
            guard case .success(let reply) = result else { return completion(nil) }
            let next: PlaceTransfer.Step
            do { next = try move.step(after: step, reply: reply) } catch {
                logger.error("move of places failed", metadata: ["campaign": "\(move.campaign)", "error": "\(error)"])
                return completion(nil)
            }
            if case .debit = step, case .credit = next { killAfterDebit?.fireIfArmed() }
            // The debit (before its credit) and the credit (before its
            // settle) wait for a replica, on the connection that wrote them.
            guard replicaAcks > 0, next.isCreditOrSettle else { return run(move, from: next, completion: completion) }
            guard let connection = redis.replyingConnection else { return completion(nil) }
            redis.send(["WAIT", String(replicaAcks), String(replicaWaitMillis)], on: connection) { [self] waited in
                guard case .success(let confirmed) = waited, (confirmed.integer ?? 0) >= Int64(replicaAcks) else {
                    return completion(nil)  // left half-way for the sweeper, which waits too
                }
                run(move, from: next, completion: completion)
            }
        }
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
