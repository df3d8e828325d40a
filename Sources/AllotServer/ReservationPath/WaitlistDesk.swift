import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// First-come waitlists (issue 14): `POST /v1/campaigns/{cid}/waitlist`
/// validates on the loop, then one script run (waitlist_join.lua) puts the
/// citizen in line for a slot or a site; `GET`/`DELETE /v1/waitlist/{wid}`
/// read the entry (with its place in line, or its offer) or leave the
/// line. Offers are made by the scripts that give places back (holds.lua,
/// waitlist.lua). A spread campaign has a line per bucket, each for the
/// citizens of its bucket, and the entry id carries the bucket's route, as
/// a reservation id does. One per loop.
final class WaitlistDesk {
    let loop: EventLoop
    let redis: any RedisRouting
    let reads: CitizenReads
    let shared: SharedServices
    var config: ServerConfig { shared.config }
    private var random = BufferedRandom()

    init(loop: EventLoop, redis: any RedisRouting, reads: CitizenReads, shared: SharedServices) {
        self.loop = loop
        self.redis = redis
        self.reads = reads
        self.shared = shared
    }

    func join(campaignID: String, exchange: HTTPExchange) {
        guard exchange.bodyCount <= config.citizenBodyBytesMax else {
            return exchange.send(.problem(.bodyTooLarge(config.citizenBodyBytesMax)))
        }
        let request: WaitlistRequest
        do { request = try WaitlistRequest.decode(exchange.body) } catch { return exchange.send(.problem(error)) }
        let bound = LoopBound(exchange, loop: loop)
        let address = shared.clientAddress(exchange)
        let joinFound: (Result<CampaignView, Problem>) -> Void = { [self] found in
            let citizen = found.flatMap { view -> Result<Citizen, Problem> in
                guard let normalized = view.campaign.idScheme.normalize(request.citizenID) else { return .failure(.invalidCitizenID) }
                return .success(Citizen(key: shared.keyer.citizenKey(normalizedID: normalized),
                                        facts: EligibilityFacts(normalizedID: normalized, scheme: view.campaign.idScheme)))
            }
            switch (found, citizen) {
            case (.success(let view), .success(let citizen)):
                self.join(view, target: request.target, citizen: citizen, address: address) { bound.wrapped.send(Self.answer($0)) }
            case (.failure(let problem), _), (_, .failure(let problem)): bound.wrapped.send(.problem(problem))
            }
        }
        if let known = reads.knownVisibleCampaign(campaignID) { return joinFound(known) }
        reads.visibleCampaign(campaignID, joinFound)
    }

    /// Who joins: their key, and what the campaign's rules read of their id.
    struct Citizen {
        let key: String
        let facts: EligibilityFacts
    }

    /// A join, from the API or the pages (the citizen already keyed);
    /// `completion` gets the entry or the refusal, on the loop.
    func join(_ view: CampaignView, target: WaitlistTarget, citizen: Citizen, address: String,
              completion: @escaping (Result<WaitlistEntry, Problem>) -> Void) {
        let entry: PreparedJoin
        switch prepare(target, citizen, view) {
        case .failure(let problem): return completion(.failure(problem))
        case .success(let prepared): entry = prepared
        }
        let keys = entry.keys
        redis.run(Scripts.waitlistJoin, slot: keys.slot,
                  keys: [keys.config, keys.remaining, keys.holdings, keys.waitlist, keys.waiters, keys.stream,
                         keys.waitQueuePrefix + target.text, keys.waitlistSequence, keys.globalBucket, keys.ipBucket(address),
                         keys.citizenBucket(citizen.key), keys.waitTargets],
                  arguments: [entry.id.text, citizen.key, target.text, entry.slotIDs.joined(separator: ","),
                              entry.offer.text, entry.code, String(config.streamEntriesMax), entry.siteID,
                              entry.elsewhere.joined(separator: ",")]) { [self] result in
            completion(outcome(result, entry: entry, target: target))
        }
    }

    private static func answer(_ result: Result<WaitlistEntry, Problem>) -> Answer {
        switch result {
        case .failure(let problem): return .problem(problem)
        case .success(let entry):
            var answer = Answer.json(201, entry.json)
            answer.headers.append(("Location", "/v1/waitlist/" + entry.id))
            return answer
        }
    }

    /// An entry ready for the script.
    private struct PreparedJoin {
        let id: ReservationID
        let offer: ReservationID
        let code: String
        let campaignID: String
        let keys: CampaignKeys
        let slotIDs: [String]
        let siteID: String
        let elsewhere: [String]
    }

    private func prepare(_ target: WaitlistTarget, _ citizen: Citizen, _ view: CampaignView) -> Result<PreparedJoin, Problem> {
        guard view.campaign.waitlist != nil else { return .failure(.notFound("this campaign has no waitlist")) }
        let slots: [Slot]
        let siteID: String
        switch target {
        case .slot(let id):
            guard let slot = view.slot(id) else { return .failure(.notFound("no such slot")) }
            slots = [slot]
            siteID = slot.siteID
        case .site(let id):
            siteID = id
            guard view.sites.contains(where: { $0.id == id }) else { return .failure(.notFound("no such site")) }
            // A site's line may be offered any of its times: with rules
            // that depend on the time, the line is per slot.
            guard view.campaign.eligibility.isEmpty else {
                return .failure(.invalidField("site_id", "this campaign's rules depend on the time: join a slot's waitlist (slot_id)"))
            }
            slots = view.slots.filter { $0.siteID == id }
        }
        if !view.campaign.eligibility.isEmpty, let slot = slots.first,
           let refusal = view.campaign.eligibility.refusal(citizen.facts, slotStartsAtMillis: slot.startsAtMillis) {
            return .failure(.notEligible(refusal))
        }
        let bucket = view.layout.buckets.bucket(ofCitizenKey: citizen.key)
        // Spread: the slots this loop saw places of in the pool or another
        // bucket (the script decides, with the line, whether they are left).
        let elsewhere = !view.layout.isSpread ? [] : slots.filter {
            (view.remaining[$0.id] ?? 0) > 0 && view.placesOutside(bucket: bucket, slot: $0.id) > 0
        }.map(\.id)
        guard let route = view.route(ofBucket: bucket) else {
            return .failure(.unavailable("the campaign is being set up; try again shortly"))
        }
        let now = UInt64(WallClock.nowMillis())
        return .success(PreparedJoin(
            id: ReservationID.make(millis: now, route: route, cipher: shared.routes, using: &random),
            offer: ReservationID.make(millis: now, route: route, cipher: shared.routes, using: &random),
            code: PickupCode.make(using: &random), campaignID: view.campaign.id, keys: view.layout.bucketKeys[bucket],
            slotIDs: slots.map(\.id), siteID: siteID, elsewhere: elsewhere))
    }

    private func outcome(_ result: Result<RedisReply, RedisFailure>, entry: PreparedJoin, target: WaitlistTarget)
        -> Result<WaitlistEntry, Problem> {
        guard case .success(let reply) = result, let parts = reply.elements, let outcome = parts.first?.text else {
            return .failure(.unavailable("the waitlist is unreachable; nothing was recorded"))
        }
        switch outcome {
        case "ok":
            guard parts.count == 3, let joined = parts[1].integer, let position = parts[2].integer else { break }
            return .success(WaitlistEntry(id: entry.id.text, campaignID: entry.campaignID, target: target, status: .waiting,
                                          position: Int(position), joinedAtMillis: joined))
        case "already_waiting": return .failure(.alreadyWaiting)
        case "places_left": return .failure(.placesLeft)
        case "citizen_limit_reached": return .failure(.citizenLimitReached(Int(parts.count > 1 ? parts[1].integer ?? 0 : 0)))
        case "no_waitlist", "not_found": return .failure(.notFound("this campaign has no waitlist"))
        case "campaign_not_open": return .failure(.campaignNotOpen(entry.campaignID))
        case "rate_limited":
            if case .rateLimited(let rejection)? = try? ReserveOutcome(reply) { return .failure(.rateLimited(rejection)) }
        case "backlog_full":
            return .failure(.unavailable("the waitlist is not being recorded fast enough; nothing was recorded", retryAfterSeconds: 5))
        default: break
        }
        shared.logger.error("waitlist join failed", metadata: ["campaign": "\(entry.campaignID)", "reply": "\(reply)"])
        return .failure(.unavailable("the waitlist failed; nothing was recorded"))
    }

    /// `GET /v1/waitlist/{wid}`: the entry, with its place in line while it
    /// waits, or the reservation its offer made.
    func entry(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        find(id) { found in bound.wrapped.send(Self.answer(found, status: 200)) }
    }

    /// `DELETE /v1/waitlist/{wid}`: out of line (an offer is a hold: its
    /// reservation is cancelled instead).
    func leave(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        leave(id) { left in bound.wrapped.send(Self.answer(left, status: 200)) }
    }

    private static func answer(_ result: Result<WaitlistEntry, Problem>, status: Int) -> Answer {
        switch result {
        case .success(let entry): .json(status, entry.json)
        case .failure(let problem): .problem(problem)
        }
    }

    /// The entry `id` (for the API and the pages).
    func find(_ id: ReservationID, completion: @escaping (Result<WaitlistEntry, Problem>) -> Void) {
        withKeys(id, completion) { [self] target, keys in
            redis.run(Scripts.waitlistView, slot: keys.slot, keys: [keys.waitlist], arguments: [id.text, keys.prefix]) { result in
                guard case .success(let reply) = result, let parts = reply.elements, let first = parts.first else {
                    return completion(.failure(.unavailable("the waitlist is not available")))
                }
                guard let text = first.text else { return completion(.failure(.notFound("no such waitlist entry"))) }
                guard let record = WaitlistRecord(text) else { return completion(.failure(.unavailable("the waitlist entry could not be read"))) }
                let position = parts.count > 1 ? parts[1].integer.map { Int($0) } : nil
                completion(.success(WaitlistEntry(id: id.text, campaignID: target.campaign, record: record, position: position)))
            }
        }
    }

    /// Takes entry `id` out of line (for the API and the pages).
    func leave(_ id: ReservationID, completion: @escaping (Result<WaitlistEntry, Problem>) -> Void) {
        withKeys(id, completion) { [self] target, keys in
            redis.run(Scripts.waitlistLeave, slot: keys.slot, keys: [keys.waitlist, keys.waiters, keys.stream],
                      arguments: [id.text, keys.prefix, String(config.streamEntriesMax)]) { result in
                guard case .success(let reply) = result, let parts = reply.elements, let outcome = parts.first?.text else {
                    return completion(.failure(.unavailable("the waitlist is unreachable; nothing was changed")))
                }
                switch outcome {
                case "ok":
                    guard let record = parts.count > 1 ? parts[1].text.flatMap(WaitlistRecord.init) : nil else { break }
                    return completion(.success(WaitlistEntry(id: id.text, campaignID: target.campaign, record: record, position: nil)))
                case "not_found": return completion(.failure(.notFound("no such waitlist entry")))
                case "refused": return completion(.failure(.notWaiting))
                case "backlog_full":
                    return completion(.failure(.unavailable("changes are not being recorded fast enough; nothing was changed",
                                                            retryAfterSeconds: 5)))
                default: break
                }
                completion(.failure(.unavailable("the waitlist failed; nothing was changed")))
            }
        }
    }

    /// The campaign and keys an entry id's route names (its bucket's).
    private func withKeys(_ id: ReservationID, _ failed: @escaping (Result<WaitlistEntry, Problem>) -> Void,
                          _ body: @escaping (RouteTarget, CampaignKeys) -> Void) {
        reads.finder.target(route: id.route(cipher: shared.routes)) { found in
            switch found {
            case .failure(let problem): failed(.failure(problem))
            case .success(let target?) where target.buckets.series == nil: body(target, CampaignKeys(target))
            case .success: failed(.failure(.notFound("no such waitlist entry")))
            }
        }
    }
}

extension Problem {
    static let alreadyWaiting = Problem(
        status: 409, code: "already_waiting", title: "Already waiting",
        detail: "this citizen is in this campaign's waitlist already: one place in line at a time")
    static let placesLeft = Problem(
        status: 409, code: "places_left", title: "Places left",
        detail: "there are places left to book now: reserve one instead of waiting")
    static let notWaiting = Problem(
        status: 409, code: "not_waiting", title: "Not waiting",
        detail: "this entry is no longer waiting (offered, passed over, or left); an offer is a reservation to confirm or cancel")
}
