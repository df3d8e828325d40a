import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// `GET`/`DELETE /v1/reservations/{rid}`, `POST …/confirm` and `POST
/// …/redeem`. The id carries
/// its campaign's route (RouteCipher), one per bucket: the campaign and the
/// bucket are known from it (in the loop's tables, or one HGET and a fetch
/// of a campaign outside the hot set), then its record is one HGET in that
/// bucket, whatever the number of campaigns.
final class ReservationLookup {
    let loop: EventLoop
    let redis: any RedisRouting
    let finder: CampaignFinder
    let shared: SharedServices
    /// `--durability replicated`: a confirm is answered once a replica has
    /// it (the reservation desk's gate, on this loop).
    let replication: ReplicationGate?
    var config: ServerConfig { shared.config }

    init(loop: EventLoop, redis: any RedisRouting, finder: CampaignFinder, shared: SharedServices, replication: ReplicationGate? = nil) {
        self.loop = loop
        self.redis = redis
        self.finder = finder
        self.shared = shared
        self.replication = replication
    }

    func getReservation(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        find(id) { found in bound.wrapped.send(Self.answer(found)) }
    }

    /// Confirm a hold or cancel (by the citizen), or redeem (by staff);
    /// `actor` goes with the event into the stream and from there into the
    /// audit trail.
    func transition(_ id: ReservationID, to target: ReservationStatus, actor: String, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        change(id, to: target, actor: actor) { changed in bound.wrapped.send(Self.answer(changed)) }
    }

    private static func answer(_ result: Result<Reservation, Problem>) -> Answer {
        switch result {
        case .success(let reservation): .json(200, reservation.json)
        case .failure(let problem): .problem(problem)
        }
    }

    /// The reservation `id` (for the JSON route and the citizen pages).
    func find(_ id: ReservationID, completion: @escaping (Result<Reservation, Problem>) -> Void) {
        // A hold a second past its expiry is shown ended even if no sweep
        // has written so yet (the stream full, say); the second keeps this
        // node's clock from saying so before Redis's, which decides.
        locate(id) { found in
            completion(found.map {
                $0.record.reservation(id: id, campaign: $0.campaign).effective(nowMillis: WallClock.nowMillis() - 1_000)
            })
        }
    }

    /// Moves reservation `id` to `target` (confirmed, from a hold;
    /// cancelled; redeemed).
    func change(_ id: ReservationID, to target: ReservationStatus, actor: String,
                completion: @escaping (Result<Reservation, Problem>) -> Void) {
        precondition([.confirmed, .cancelled, .redeemed].contains(target))
        locate(id) { [self] found in
            guard case .success(let located) = found else {
                return completion(.failure(found.failureProblem ?? .notFound("no such reservation")))
            }
            let keys = located.keys
            redis.run(Scripts.transition, slot: keys.slot, keys: [keys.records, keys.remaining, keys.holdings, keys.stats, keys.stream,
                                                 keys.config, keys.seriesLedger(located.record.citizenKey), keys.holds,
                                                 keys.holders, keys.waitlist],
                      arguments: [id.text, target.rawValue, actor, String(config.streamEntriesMax),
                                  keys.isSeriesBucket ? "series" : "", keys.isSeriesBucket ? "" : keys.prefix]) { [self] result in
                let answer = transitionResult(result, id: id, located: located, target: target)
                // A confirm is what keeps a held place: with replicated
                // durability it is answered once a replica has it (a
                // confirm sent again is answered alike: it is idempotent).
                guard target == .confirmed, case .success = answer, let replication, replication.isActive else {
                    return completion(answer)
                }
                replication.hold(redis.replyingConnection) { replicated in
                    completion(replicated ? answer : .failure(.unavailable(
                        "the confirm was made but no replica confirmed it in time; send it again for its answer", retryAfterSeconds: 1)))
                }
            }
        }
    }

    private func transitionResult(_ result: Result<RedisReply, RedisFailure>, id: ReservationID,
                                  located: Located, target: ReservationStatus) -> Result<Reservation, Problem> {
        let campaign = located.campaign
        guard case .success(let reply) = result else {
            return .failure(.unavailable("the reservation store is unreachable; nothing was changed"))
        }
        let outcome: TransitionOutcome
        do { outcome = try TransitionOutcome(reply) } catch {
            shared.logger.error("transition script failed", metadata: ["campaign": "\(campaign)", "error": "\(error)"])
            return .failure(.unavailable("the reservation store failed; nothing was changed"))
        }
        switch outcome {
        case .changed(let record, let rejoin):
            if rejoin { rejoinHotSet(campaign) }
            if record.status == .cancelled {
                finder.catalog.placesChanged(campaign: campaign, bucket: located.bucket, slot: record.slot, by: 1)
            }
            return .success(record.reservation(id: id, campaign: campaign))
        case .unchanged(let record): return .success(record.reservation(id: id, campaign: campaign))
        case .holdExpired(let record, let rejoin, let endedNow):
            if rejoin { rejoinHotSet(campaign) }
            if endedNow { finder.catalog.placesChanged(campaign: campaign, bucket: located.bucket, slot: record.slot, by: 1) }
            return .failure(target == .confirmed ? .holdExpired : target == .cancelled ? .notCancellable : .notRedeemable)
        case .notFound: return .failure(.notFound("no such reservation"))
        case .refused:
            return .failure(target == .confirmed ? .notConfirmable : target == .cancelled ? .notCancellable : .notRedeemable)
        case .backlogFull:
            return .failure(.unavailable("changes are not being recorded fast enough; nothing was changed", retryAfterSeconds: 5))
        }
    }

    /// Puts a retired campaign back in the hot set, its mark already cleared
    /// by transition.lua (HotSet.swift). The change is answered without
    /// waiting: if this fails, the persister's sweep adds the campaign.
    private func rejoinHotSet(_ campaign: String) {
        let add = HotSet.addCommand(campaign)
        redis.send(add.arguments, slot: add.slot) { [shared] result in
            if case .success(let reply) = result, reply.errorMessage == nil { return }
            shared.logger.warning("campaign not put back in the hot set; the persister's sweep will",
                                  metadata: ["campaign": "\(campaign)"])
        }
    }

    /// Where a reservation is: its campaign, its bucket (and its keys), its record.
    private struct Located {
        let campaign: String
        /// Spread over several buckets.
        let isSpread: Bool
        let bucket: Int
        let keys: CampaignKeys
        let record: ReservationRecord
    }

    /// Finds the campaign and bucket holding reservation `id`, with its
    /// record: at most two Redis calls (the route's campaign and bucket if
    /// this loop does not know them, then the record).
    private func locate(_ id: ReservationID, completion: @escaping (Result<Located, Problem>) -> Void) {
        finder.target(route: id.route(cipher: shared.routes)) { [self] found in
            switch found {
            case .failure(let problem): completion(.failure(problem))
            case .success(nil): completion(.failure(.notFound("no such reservation")))
            case .success(let target?):
                let keys = CampaignKeys(target)
                redis.send(["HGET", keys.records, id.text], slot: keys.slot) { [self] result in
                    completion(record(result).map {
                        Located(campaign: target.campaign, isSpread: target.spreadBucket != nil, bucket: target.bucket, keys: keys, record: $0)
                    })
                }
            }
        }
    }

    private func record(_ result: Result<RedisReply, RedisFailure>) -> Result<ReservationRecord, Problem> {
        guard case .success(let reply) = result else { return .failure(.unavailable("reservations are not available")) }
        guard let text = reply.text else { return .failure(.notFound("no such reservation")) }
        guard let record = ReservationRecord(text) else {
            shared.logger.error("unreadable reservation record")
            return .failure(.unavailable("the reservation could not be read"))
        }
        return .success(record)
    }
}

extension Result where Failure == Problem {
    var failureProblem: Problem? {
        if case .failure(let problem) = self { return problem }
        return nil
    }
}
