import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// First-come waitlists (issue 14): `POST /v1/campaigns/{cid}/waitlist`
/// validates on the loop, then one script run (waitlist_join.lua) puts the
/// citizen in line for a slot or a site; `GET`/`DELETE /v1/waitlist/{wid}`
/// read the entry (with its place in line, or its offer) or leave the
/// line. Offers are made by the scripts that give places back (holds.lua,
/// waitlist.lua). The entry id carries the campaign's route, as a
/// reservation id does. One per loop.
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
        if let known = reads.knownVisibleCampaign(campaignID) { return join(request, known, address, bound) }
        reads.visibleCampaign(campaignID) { [self] found in join(request, found, address, bound) }
    }

    /// An entry ready for the script.
    private struct PreparedJoin {
        let id: ReservationID
        let offer: ReservationID
        let code: String
        let campaignID: String
        let keys: CampaignKeys
        let citizenKey: String
        let slotIDs: [String]
    }

    private func join(_ request: WaitlistRequest, _ found: Result<CampaignView, Problem>, _ address: String,
                      _ exchange: LoopBound<HTTPExchange>) {
        let entry: PreparedJoin
        switch found.flatMap({ prepare(request, $0) }) {
        case .failure(let problem): return exchange.wrapped.send(.problem(problem))
        case .success(let prepared): entry = prepared
        }
        let keys = entry.keys
        redis.run(Scripts.waitlistJoin, slot: keys.slot,
                  keys: [keys.config, keys.remaining, keys.holdings, keys.waitlist, keys.waiters, keys.stream,
                         keys.waitQueuePrefix + request.target.text, keys.waitlistSequence, keys.globalBucket, keys.ipBucket(address),
                         keys.citizenBucket(entry.citizenKey)],
                  arguments: [entry.id.text, entry.citizenKey, request.target.text, entry.slotIDs.joined(separator: ","),
                              entry.offer.text, entry.code, String(config.streamEntriesMax)]) { [self] result in
            exchange.wrapped.send(answer(result, entry: entry, target: request.target))
        }
    }

    private func prepare(_ request: WaitlistRequest, _ view: CampaignView) -> Result<PreparedJoin, Problem> {
        guard view.campaign.waitlist != nil, !view.layout.isSpread else { return .failure(.notFound("this campaign has no waitlist")) }
        let slots: [Slot]
        switch request.target {
        case .slot(let id):
            guard let slot = view.slot(id) else { return .failure(.notFound("no such slot")) }
            slots = [slot]
        case .site(let id):
            guard view.sites.contains(where: { $0.id == id }) else { return .failure(.notFound("no such site")) }
            // A site's line may be offered any of its times: with rules
            // that depend on the time, the line is per slot.
            guard view.campaign.eligibility.isEmpty else {
                return .failure(.invalidField("site_id", "this campaign's rules depend on the time: join a slot's waitlist (slot_id)"))
            }
            slots = view.slots.filter { $0.siteID == id }
        }
        guard let normalized = view.campaign.idScheme.normalize(request.citizenID) else { return .failure(.invalidCitizenID) }
        if !view.campaign.eligibility.isEmpty, let slot = slots.first,
           let refusal = view.campaign.eligibility.refusal(EligibilityFacts(normalizedID: normalized, scheme: view.campaign.idScheme),
                                                           slotStartsAtMillis: slot.startsAtMillis) {
            return .failure(.notEligible(refusal))
        }
        guard let route = view.route(ofBucket: 0) else { return .failure(.unavailable("the campaign is being set up; try again shortly")) }
        let now = UInt64(WallClock.nowMillis())
        return .success(PreparedJoin(
            id: ReservationID.make(millis: now, route: route, cipher: shared.routes, using: &random),
            offer: ReservationID.make(millis: now, route: route, cipher: shared.routes, using: &random),
            code: PickupCode.make(using: &random), campaignID: view.campaign.id, keys: view.layout.bucketKeys[0],
            citizenKey: shared.keyer.citizenKey(normalizedID: normalized), slotIDs: slots.map(\.id)))
    }

    private func answer(_ result: Result<RedisReply, RedisFailure>, entry: PreparedJoin, target: WaitlistTarget) -> Answer {
        guard case .success(let reply) = result, let parts = reply.elements, let outcome = parts.first?.text else {
            return .problem(.unavailable("the waitlist is unreachable; nothing was recorded"))
        }
        switch outcome {
        case "ok":
            guard parts.count == 3, let joined = parts[1].integer, let position = parts[2].integer else { break }
            let json = WaitlistEntry(id: entry.id.text, campaignID: entry.campaignID, target: target, status: .waiting,
                                     position: Int(position), joinedAtMillis: joined).json
            var answer = Answer.json(201, json)
            answer.headers.append(("Location", "/v1/waitlist/" + entry.id.text))
            return answer
        case "already_waiting": return .problem(.alreadyWaiting)
        case "places_left": return .problem(.placesLeft)
        case "citizen_limit_reached": return .problem(.citizenLimitReached(Int(parts.count > 1 ? parts[1].integer ?? 0 : 0)))
        case "no_waitlist", "not_found": return .problem(.notFound("this campaign has no waitlist"))
        case "campaign_not_open": return .problem(.campaignNotOpen(entry.campaignID))
        case "rate_limited":
            if case .rateLimited(let rejection)? = try? ReserveOutcome(reply) { return .problem(.rateLimited(rejection)) }
        case "backlog_full":
            return .problem(.unavailable("the waitlist is not being recorded fast enough; nothing was recorded", retryAfterSeconds: 5))
        default: break
        }
        shared.logger.error("waitlist join failed", metadata: ["campaign": "\(entry.campaignID)", "reply": "\(reply)"])
        return .problem(.unavailable("the waitlist failed; nothing was recorded"))
    }

    /// `GET /v1/waitlist/{wid}`: the entry, with its place in line while it
    /// waits, or the reservation its offer made.
    func entry(_ id: ReservationID, exchange: HTTPExchange) {
        withKeys(id, exchange) { [self] target, keys, bound in
            redis.run(Scripts.waitlistView, slot: keys.slot, keys: [keys.waitlist], arguments: [id.text, keys.waitQueuePrefix]) { result in
                guard case .success(let reply) = result, let parts = reply.elements, let first = parts.first else {
                    return bound.wrapped.send(.problem(.unavailable("the waitlist is not available")))
                }
                guard let text = first.text else { return bound.wrapped.send(.problem(.notFound("no such waitlist entry"))) }
                guard let record = WaitlistRecord(text) else {
                    return bound.wrapped.send(.problem(.unavailable("the waitlist entry could not be read")))
                }
                let position = parts.count > 1 ? parts[1].integer.map { Int($0) } : nil
                bound.wrapped.send(.json(200, WaitlistEntry(id: id.text, campaignID: target.campaign, record: record, position: position).json))
            }
        }
    }

    /// `DELETE /v1/waitlist/{wid}`: out of line (an offer is a hold: its
    /// reservation is cancelled instead).
    func leave(_ id: ReservationID, exchange: HTTPExchange) {
        withKeys(id, exchange) { [self] target, keys, bound in
            redis.run(Scripts.waitlistLeave, slot: keys.slot, keys: [keys.waitlist, keys.waiters, keys.stream],
                      arguments: [id.text, keys.waitQueuePrefix, String(config.streamEntriesMax)]) { result in
                guard case .success(let reply) = result, let parts = reply.elements, let outcome = parts.first?.text else {
                    return bound.wrapped.send(.problem(.unavailable("the waitlist is unreachable; nothing was changed")))
                }
                switch outcome {
                case "ok":
                    guard let record = parts.count > 1 ? parts[1].text.flatMap(WaitlistRecord.init) : nil else { break }
                    return bound.wrapped.send(.json(200, WaitlistEntry(id: id.text, campaignID: target.campaign, record: record,
                                                                       position: nil).json))
                case "not_found": return bound.wrapped.send(.problem(.notFound("no such waitlist entry")))
                case "refused": return bound.wrapped.send(.problem(.notWaiting))
                case "backlog_full":
                    return bound.wrapped.send(.problem(.unavailable("changes are not being recorded fast enough; nothing was changed",
                                                                    retryAfterSeconds: 5)))
                default: break
                }
                bound.wrapped.send(.problem(.unavailable("the waitlist failed; nothing was changed")))
            }
        }
    }

    /// The campaign and keys an entry id's route names (its bucket: the
    /// campaign has one).
    private func withKeys(_ id: ReservationID, _ exchange: HTTPExchange,
                         _ body: @escaping (RouteTarget, CampaignKeys, LoopBound<HTTPExchange>) -> Void) {
        let bound = LoopBound(exchange, loop: loop)
        reads.finder.target(route: id.route(cipher: shared.routes)) { found in
            switch found {
            case .failure(let problem): bound.wrapped.send(.problem(problem))
            case .success(let target?) where target.spreadBucket == nil: body(target, CampaignKeys(target), bound)
            case .success: bound.wrapped.send(.problem(.notFound("no such waitlist entry")))
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
