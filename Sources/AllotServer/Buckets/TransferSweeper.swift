import AllotDomain
import Logging
import RedisClient

/// Finishes moves of places left half-way (PlaceTransfer): a node killed
/// between debit and credit, or a reply lost. Every record on the pool or a
/// bucket older than `staleMillis` (by the shard's own clock, as the record
/// was stamped) is credited, once by its mark, and settled. A mover still
/// at work meanwhile is harmless: whichever credits first, the mark stops
/// the other. Run by the persister's thread.
struct TransferSweeper {
    /// Older than any move still under way: a node gives up on a move
    /// within its command deadline (a second), so 10 s is a move left.
    var staleMillis: Int64 = 10_000
    let logger: Logger
    /// `--durability replicated`: each step waits for a replica.
    var replicaAcks = 0

    /// Finishes the campaign's moves left half-way; returns how many.
    @discardableResult
    func sweep(campaign: String, buckets: CampaignBuckets, redis: any RedisSyncRouting) throws -> Int {
        guard buckets.isSpread else { return 0 }
        var finished = 0
        let sources: [PlaceTransfer.Source] = [.pool] + (0..<buckets.count).map { .bucket($0) }
        for source in sources {
            let keys = source.keys(campaign, of: buckets)
            let records = try redis.checked(["HGETALL", keys.transfers], slot: keys.slot).pairs ?? [:]
            guard !records.isEmpty else { continue }
            let now = try Self.millis(try redis.checked(["TIME"], slot: keys.slot))
            for (id, text) in records.sorted(by: { $0.key < $1.key }) {
                guard let record = PlaceTransfer.Record(text), record.target >= 0, record.target < buckets.count else {
                    logger.error("unreadable move of places left as it is", metadata: ["campaign": "\(campaign)", "id": "\(id)"])
                    continue
                }
                let age = now - record.atMillis
                guard age >= staleMillis else { continue }
                // Past the mark's life it could have been credited and the
                // mark gone: an operator decides (the places are in the record).
                guard age < Int64(PlaceTransfer.markSeconds - 3_600) * 1_000 else {
                    logger.error("move of places too old to finish safely", metadata: [
                        "campaign": "\(campaign)", "id": "\(id)", "slot": "\(record.slot)", "places": "\(record.places)",
                    ])
                    continue
                }
                let move = PlaceTransfer(id: id, campaign: campaign, buckets: buckets, slot: record.slot,
                                         source: source, target: record.target)
                try move.run(from: .credit(places: record.places), on: redis, replicaAcks: replicaAcks)
                finished += 1
                logger.warning("move of places finished by the sweeper", metadata: [
                    "campaign": "\(campaign)", "id": "\(id)", "slot": "\(record.slot)", "places": "\(record.places)",
                ])
            }
        }
        return finished
    }

    /// TIME's reply in milliseconds.
    private static func millis(_ reply: RedisReply) throws -> Int64 {
        guard let parts = reply.elements, parts.count == 2, let seconds = parts[0].text.flatMap({ Int64($0) }),
              let micros = parts[1].text.flatMap({ Int64($0) }) else { throw RedisError("TIME: unreadable reply") }
        return seconds * 1_000 + micros / 1_000
    }
}
