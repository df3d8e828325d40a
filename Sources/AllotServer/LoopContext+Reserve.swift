import AllotDomain
import EventHTTP
import RedisClient

/// `POST /v1/campaigns/{cid}/reservations`: validate on the loop, then one
/// script run in Redis decides and records everything.
extension LoopContext {
    static let idempotencyKeyBytesMax = 128

    func reserve(campaignID: String, exchange: HTTPExchange) {
        let attempt: ReservationAttempt
        switch prepareAttempt(campaignID: campaignID, exchange: exchange) {
        case .failure(let problem):
            // Counted only for a campaign that exists: a hostile client
            // naming random campaigns must not grow this map or Redis.
            if problem.status != 503, catalog.campaigns[campaignID] != nil { countInvalid(campaignID) }
            shared.metrics.reservationOutcome(problem.status == 503 ? "unavailable" : problem.status == 404 ? "not_found" : "invalid")
            return exchange.send(.problem(problem))
        case .success(let prepared): attempt = prepared
        }
        let keys = attempt.keys
        let bound = LoopBound(exchange, loop: loop)
        let sentMicros = monotonicMicros()
        redis.run(Scripts.reserve, keys: [
            keys.config, keys.remaining, keys.holdings, keys.stats, keys.records, keys.stream,
            keys.globalBucket, keys.ipBucket(attempt.address), keys.citizenBucket(attempt.citizenKey),
            keys.idempotency(attempt.idempotencyKeyHash),
        ], arguments: [
            attempt.slot.id, attempt.slot.siteID, attempt.id.text, attempt.code, attempt.citizenKey,
            attempt.fingerprint, String(config.idempotencyTTLSeconds),
        ]) { [self] result in
            let metrics = shared.metrics
            metrics.redisRoundTrip.recordMicroseconds(monotonicMicros() - sentMicros)
            let (answer, outcome) = answer(for: result, attempt: attempt)
            metrics.reservationOutcome(outcome)
            bound.wrapped.send(answer)
        }
    }

    private func prepareAttempt(campaignID: String, exchange: HTTPExchange) -> Result<ReservationAttempt, Problem> {
        guard exchange.bodyCount <= config.citizenBodyBytesMax else { return .failure(.bodyTooLarge(config.citizenBodyBytesMax)) }
        let view: CampaignView
        switch visibleCampaign(campaignID) {
        case .failure(let problem): return .failure(problem)
        case .success(let found): view = found
        }
        let body: ReserveRequest
        do { body = try ReserveRequest.decode(exchange.body()) } catch { return .failure(error) }
        guard let slot = view.slot(body.slotID) else { return .failure(.notFound("no such slot")) }
        guard let normalized = view.campaign.idScheme.normalize(body.citizenID) else { return .failure(.invalidCitizenID) }
        let citizenKey = shared.keyer.citizenKey(normalizedID: normalized)
        // Without a key the script gets an empty fingerprint and never reads
        // or writes the placeholder key "-".
        var idempotencyKeyHash = "-", fingerprint = ""
        if let key = exchange.header("Idempotency-Key") {
            guard !key.isEmpty, key.utf8.count <= Self.idempotencyKeyBytesMax,
                  key.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
                return .failure(.invalidField("Idempotency-Key", "must be 1 to 128 visible ASCII characters"))
            }
            // Keyed, like the citizen id: a client may put anything in it.
            idempotencyKeyHash = shared.keyer.citizenKey(normalizedID: "idempotency:" + key)
            fingerprint = citizenKey + ":" + slot.id
        }
        let id = ReservationID.make(millis: UInt64(WallClock.nowMillis()), using: &random)
        return .success(ReservationAttempt(
            id: id, code: PickupCode.make(using: &random), campaignID: campaignID, keys: view.keys, slot: slot,
            citizenKey: citizenKey, address: clientAddress(exchange), limit: view.campaign.perCitizenLimit,
            idempotencyKeyHash: idempotencyKeyHash, fingerprint: fingerprint))
    }

    /// The answer to a script run, and its outcome for metrics.
    private func answer(for result: Result<RedisReply, RedisFailure>, attempt: ReservationAttempt) -> (Answer, String) {
        guard case .success(let reply) = result else {
            return (.problem(.unavailable("the reservation store is unreachable; nothing was reserved")), "unavailable")
        }
        guard let parts = reply.elements, let outcome = parts.first?.text else {
            shared.logger.error("reserve script failed", metadata: ["campaign": "\(attempt.campaignID)",
                                                                    "error": "\(reply.errorMessage ?? "bad reply")"])
            return (.problem(.unavailable("the reservation store failed; nothing was reserved")), "unavailable")
        }
        switch outcome {
        case "ok":
            return (created(attempt, id: attempt.id, code: attempt.code, createdAt: parts[1].integer ?? 0), "confirmed")
        case "replay":
            return (replay(parts[1].text ?? "", attempt: attempt), "idempotent_replay")
        case "idempotency_conflict": return (.problem(.idempotencyConflict), outcome)
        case "not_found": return (.problem(.notFound("no such \(parts[1].text ?? "campaign")")), outcome)
        case "campaign_not_open": return (.problem(.campaignNotOpen(attempt.campaignID)), outcome)
        case "slot_full": return (.problem(.slotFull(attempt.slot.id)), outcome)
        case "citizen_limit_reached": return (.problem(.citizenLimitReached(Int(parts[1].integer ?? 0))), outcome)
        case "rate_limited": return (rateLimited(parts), outcome)
        default: return (.problem(.unavailable("unexpected answer from the reservation store")), "unavailable")
        }
    }

    private func created(_ attempt: ReservationAttempt, id: ReservationID, code: String, createdAt: Int64) -> Answer {
        let reservation = Reservation(id: id, campaignID: attempt.campaignID, slotID: attempt.slot.id,
                                      siteID: attempt.slot.siteID, status: .confirmed, code: code, createdAtMillis: createdAt)
        return .json(201, reservation.json, headers: [("Location", "/v1/reservations/" + id.text)])
    }

    /// The answer stored under an Idempotency-Key, given again.
    private func replay(_ stored: String, attempt: ReservationAttempt) -> Answer {
        let fields = stored.split(separator: "|").map(String.init)
        switch fields.first {
        case "ok" where fields.count == 4:
            guard let id = ReservationID(parsing: Substring(fields[1])), let createdAt = Int64(fields[3]) else { break }
            return created(attempt, id: id, code: fields[2], createdAt: createdAt)
        case "slot_full": return .problem(.slotFull(attempt.slot.id))
        case "citizen_limit_reached" where fields.count == 2:
            return .problem(.citizenLimitReached(Int(fields[1]) ?? attempt.limit))
        default: break
        }
        return .problem(.unavailable("unexpected stored answer"))
    }

    private func rateLimited(_ parts: [RedisReply]) -> Answer {
        guard parts.count == 5, let bucket = parts[1].text.flatMap(BucketName.init(rawValue:)),
              let retry = parts[2].integer, let rate = parts[3].text.flatMap(Double.init),
              let burst = parts[4].text.flatMap(Double.init), let policy = BucketPolicy(rate: rate, burst: burst)
        else { return .problem(.unavailable("unexpected answer from the reservation store")) }
        return .problem(.rateLimited(RateLimitRejection(bucket: bucket, retryAfterSeconds: max(1, Int(retry)), policy: policy)))
    }
}

/// A validated attempt, ready for the script.
struct ReservationAttempt {
    let id: ReservationID
    let code: String
    let campaignID: String
    let keys: CampaignKeys
    let slot: Slot
    let citizenKey: String
    let address: String
    let limit: Int
    let idempotencyKeyHash: String
    let fingerprint: String
}
