import AllotDomain
import RedisClient

/// A move of one slot's places from a source (the campaign's pool, or a
/// bucket) to a bucket, in three steps, each one script or command on one
/// shard:
///
/// 1. **debit** (debit.lua, on the source): the places leave the source and
///    a record of the move, under its id, appears there, atomically;
/// 2. **credit** (credit.lua, on the target): the places are added, once
///    per id (a mark with the id says it was done);
/// 3. **settle** (settle.lua, on the source): the record goes, and a mark
///    with the places stays, so a debit sent twice takes nothing more.
///
/// Stopped anywhere (a node killed, a reply lost), no place is made or
/// lost: before 1 nothing happened; after 1 the record holds the places
/// until the sweeper (`TransferSweeper`) runs 2 and 3 for it; after 2 the
/// mark stops a second credit. So for every slot, at any moment:
/// pool + Σ buckets' remaining + places in records not yet credited
/// = capacity − places taken.
struct PlaceTransfer: Equatable {
    enum Source: Equatable {
        case pool
        case bucket(Int)

        /// The pool is in the campaign's home.
        func keys(_ campaign: String, of buckets: CampaignBuckets) -> CampaignKeys {
            switch self {
            case .pool: CampaignKeys(campaign)
            case .bucket(let bucket): CampaignKeys(campaign, bucket: bucket, of: buckets)
            }
        }
    }

    enum Amount: Equatable {
        case places(Int)
        /// Half of what the source holds, rounded up (a steal).
        case half
    }

    enum Step: Equatable {
        case debit(Amount)
        case credit(places: Int)
        case settle(places: Int)
        /// The move is over: `places` reached the target. 0: the source had
        /// none, and `inTransit` of the slot's places were on their way out
        /// of it then (moves debited and not settled).
        case done(places: Int, inTransit: Int = 0)

        var isCreditOrSettle: Bool {
            switch self {
            case .credit, .settle: true
            case .debit, .done: false
            }
        }
    }

    /// How long a move's credit and settled marks live: a move left
    /// half-way longer than this is not finished by the sweeper (it could
    /// not tell whether it was credited), but reported.
    static let markSeconds = 24 * 3600

    let id: String
    let campaign: String
    let buckets: CampaignBuckets
    let slot: String
    let source: Source
    let target: Int

    var sourceKeys: CampaignKeys { source.keys(campaign, of: buckets) }

    var targetKeys: CampaignKeys { CampaignKeys(campaign, bucket: target, of: buckets) }

    /// What step `step` sends.
    struct Request {
        let function: StoredFunction
        let slot: Int
        let keys: [String]
        let arguments: [String]
    }

    func request(for step: Step) -> Request? {
        switch step {
        case .debit(let amount):
            let keys = sourceKeys
            let places = switch source {
            case .pool: keys.pool
            case .bucket: keys.remaining
            }
            let wanted = switch amount {
            case .places(let count): String(count)
            case .half: "half"
            }
            return Request(function: Scripts.debit, slot: keys.slot, keys: [places, keys.transfers, keys.transferSettled(id)],
                           arguments: [slot, wanted, id, String(target)])
        case .credit(let places):
            let keys = targetKeys
            return Request(function: Scripts.credit, slot: keys.slot, keys: [keys.remaining, keys.transferCredit(id)],
                           arguments: [slot, String(places), String(Self.markSeconds)])
        case .settle(let places):
            let keys = sourceKeys
            return Request(function: Scripts.settle, slot: keys.slot, keys: [keys.transfers, keys.transferSettled(id)],
                           arguments: [id, String(places), String(Self.markSeconds)])
        case .done:
            return nil
        }
    }

    /// The step after `step`, given its reply.
    func step(after step: Step, reply: RedisReply) throws(ContractViolation) -> Step {
        if let message = reply.errorMessage { throw ContractViolation("transfer: \(message)") }
        switch step {
        case .debit:
            // A count taken, or minus the places on their way out (none taken).
            guard let places = reply.integer else { throw ContractViolation("debit: not a count") }
            return places > 0 ? .credit(places: Int(places)) : .done(places: 0, inTransit: Int(-places))
        case .credit(let places):
            guard reply.integer == 0 || reply.integer == 1 else { throw ContractViolation("credit: not 0 or 1") }
            return .settle(places: places)
        case .settle(let places):
            return .done(places: places)
        case .done:
            return step
        }
    }

    /// Runs the move from `step` on a blocking client, stopping early after
    /// `stepsMax` steps (tests stop it there, as a crash would); returns the
    /// step it stopped before.
    /// `replicaAcks` (`--durability replicated`): a step's write reaches
    /// that many replicas before the next step (a `WAIT` on its master).
    @discardableResult
    func run(from step: Step, on redis: any RedisSyncRouting, stepsMax: Int = .max, replicaAcks: Int = 0) throws -> Step {
        var current = step
        var taken = 0
        while taken < stepsMax, let request = request(for: current) {
            let reply = try redis.run(request.function, slot: request.slot, keys: request.keys, arguments: request.arguments)
            current = try self.step(after: current, reply: reply)
            taken += 1
            if replicaAcks > 0, current.isCreditOrSettle {
                let confirmed = try redis.command(["WAIT", String(replicaAcks), "1000"], slot: request.slot)
                guard (confirmed.integer ?? 0) >= Int64(replicaAcks) else {
                    throw RedisError("move \(id): no replica confirmed its \(taken == 1 ? "first" : "next") step; left for the sweeper")
                }
            }
        }
        return current
    }

    /// A move's record, as debit.lua writes it: `slot|places|target|ms`.
    struct Record: Equatable {
        let slot: String
        let places: Int
        let target: Int
        let atMillis: Int64

        init?(_ text: String) {
            let fields = text.split(separator: "|", omittingEmptySubsequences: false)
            guard fields.count == 4, let places = Int(fields[1]), places > 0, let target = Int(fields[2]),
                  let atMillis = Int64(fields[3]) else { return nil }
            slot = String(fields[0])
            self.places = places
            self.target = target
            self.atMillis = atMillis
        }
    }
}
