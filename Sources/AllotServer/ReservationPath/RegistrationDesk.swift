import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// A lottery's entries (issue 14): `POST /v1/campaigns/{cid}/registrations`
/// validates on the loop, then one script run in the citizen's bucket
/// (register.lua) records the entry once per citizen; `GET
/// /v1/registrations/{rid}` reads it back. The id carries the campaign's
/// route, as a reservation id does. One per loop.
final class RegistrationDesk {
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

    func register(campaignID: String, exchange: HTTPExchange) {
        guard exchange.bodyCount <= config.citizenBodyBytesMax else {
            return exchange.send(.problem(.bodyTooLarge(config.citizenBodyBytesMax)))
        }
        let request: RegistrationRequest
        do { request = try RegistrationRequest.decode(exchange.body) } catch { return exchange.send(.problem(error)) }
        let bound = LoopBound(exchange, loop: loop)
        let address = shared.clientAddress(exchange)
        if let known = reads.knownVisibleCampaign(campaignID) { return register(request, known, address, bound) }
        reads.visibleCampaign(campaignID) { [self] found in register(request, found, address, bound) }
    }

    private func register(_ request: RegistrationRequest, _ found: Result<CampaignView, Problem>, _ address: String,
                          _ exchange: LoopBound<HTTPExchange>) {
        switch prepare(request, found) {
        case .failure(let problem): exchange.wrapped.send(.problem(problem))
        case .success(let entry):
            let keys = entry.keys
            redis.run(Scripts.register, slot: keys.slot, keys: [keys.config, keys.registrations, keys.registrants, keys.stream,
                                                               keys.globalBucket, keys.ipBucket(address), keys.citizenBucket(entry.citizenKey)],
                      arguments: [entry.id.text, entry.citizenKey, RegistrationRecord.preferencesText(request.preferences),
                                  String(config.streamEntriesMax)]) { [self] result in
                exchange.wrapped.send(answer(result, entry: entry, preferences: request.preferences))
            }
        }
    }

    /// An entry ready for the script.
    private struct PreparedEntry {
        let id: ReservationID
        let campaignID: String
        let keys: CampaignKeys
        let citizenKey: String
    }

    private func prepare(_ request: RegistrationRequest, _ found: Result<CampaignView, Problem>) -> Result<PreparedEntry, Problem> {
        let view: CampaignView
        switch found {
        case .failure(let problem): return .failure(problem)
        case .success(let found): view = found
        }
        guard view.campaign.allocation == .lottery else {
            return .failure(.notLottery(view.campaign.id))
        }
        for preference in request.preferences {
            let known = switch preference {
            case .slot(let id): view.slot(id) != nil
            case .site(let id): view.sites.contains { $0.id == id }
            }
            guard known else { return .failure(.invalidField("preferences", "\(preference.text) is no slot or site of this campaign")) }
        }
        guard let normalized = view.campaign.idScheme.normalize(request.citizenID) else { return .failure(.invalidCitizenID) }
        let citizenKey = shared.keyer.citizenKey(normalizedID: normalized)
        let bucket = view.layout.isSpread ? view.layout.buckets.bucket(ofCitizenKey: citizenKey) : 0
        guard let route = view.route(ofBucket: bucket) else {
            return .failure(.unavailable("the campaign is being set up; try again shortly"))
        }
        let id = ReservationID.make(millis: UInt64(WallClock.nowMillis()), route: route, cipher: shared.routes, using: &random)
        return .success(PreparedEntry(id: id, campaignID: view.campaign.id, keys: view.layout.bucketKeys[bucket], citizenKey: citizenKey))
    }

    private func answer(_ result: Result<RedisReply, RedisFailure>, entry: PreparedEntry, preferences: [Preference]) -> Answer {
        guard case .success(let reply) = result else {
            return .problem(.unavailable("the registration store is unreachable; nothing was recorded"))
        }
        if let created = reply.integer {
            let registration = Registration(id: entry.id, campaignID: entry.campaignID, preferences: preferences, createdAtMillis: created)
            var answer = Answer.json(201, registration.json)
            answer.headers.append(("Location", "/v1/registrations/" + entry.id.text))
            return answer
        }
        switch reply.elements?.first?.text {
        case "citizen_limit_reached": return .problem(.registeredAlready)
        case "rate_limited":
            // The same reply as reserve.lua's, read by the same code.
            if case .rateLimited(let rejection)? = try? ReserveOutcome(reply) { return .problem(.rateLimited(rejection)) }
            shared.logger.error("unreadable rate limit reply", metadata: ["campaign": "\(entry.campaignID)"])
            return .problem(.unavailable("the registration store failed; nothing was recorded"))
        case "campaign_not_open": return .problem(.campaignNotOpen(entry.campaignID))
        case "not_found": return .problem(.notFound("no such campaign"))
        case "backlog_full":
            return .problem(.unavailable("registrations are not being recorded fast enough; nothing was recorded", retryAfterSeconds: 5))
        default:
            shared.logger.error("register script failed", metadata: ["campaign": "\(entry.campaignID)", "reply": "\(reply)"])
            return .problem(.unavailable("the registration store failed; nothing was recorded"))
        }
    }

    /// The registration `id`, as its citizen may see it (never their key).
    func receipt(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        reads.finder.target(route: id.route(cipher: shared.routes)) { [self] found in
            switch found {
            case .failure(let problem): return bound.wrapped.send(.problem(problem))
            case .success(nil): return bound.wrapped.send(.problem(.notFound("no such registration")))
            case .success(let target?):
                let keys = CampaignKeys(target)
                redis.send(["HGET", keys.registrations, id.text], slot: keys.slot) { [redis] result in
                    guard case .success(let reply) = result else {
                        return bound.wrapped.send(.problem(.unavailable("registrations are not available")))
                    }
                    guard let text = reply.text else { return bound.wrapped.send(.problem(.notFound("no such registration"))) }
                    guard let record = RegistrationRecord(text) else {
                        return bound.wrapped.send(.problem(.unavailable("the registration could not be read")))
                    }
                    // A winner's reservation, once the draw has given it.
                    redis.send(["HGET", keys.awards, id.text], slot: keys.slot) { result in
                        guard case .success(let award) = result else {
                            return bound.wrapped.send(.problem(.unavailable("registrations are not available")))
                        }
                        let registration = Registration(id: id, campaignID: target.campaign, preferences: record.preferences,
                                                        createdAtMillis: record.createdAtMillis, reservationID: award.text)
                        bound.wrapped.send(.json(200, registration.json))
                    }
                }
            }
        }
    }
}

/// A registration as its citizen sees it (`Registration` in the contract).
struct Registration {
    let id: ReservationID
    let campaignID: String
    let preferences: [Preference]
    let createdAtMillis: Int64
    /// A winner's reservation (its page has the pickup code).
    var reservationID: String? = nil

    var json: [UInt8] {
        var json = JSONWriter(capacity: 192)
        json.beginObject()
        json.field("id", id.text)
        json.field("campaign_id", campaignID)
        json.field("status", reservationID == nil ? "registered" : "won")
        if let reservationID { json.field("reservation_id", reservationID) }
        json.key("preferences")
        json.beginArray()
        for preference in preferences { json.string(preference.text) }
        json.endArray()
        json.field("created_at", Timestamp.format(millis: createdAtMillis, alwaysFraction: true))
        json.endObject()
        return json.bytes
    }
}

extension Problem {
    /// A citizen's second registration in one lottery. Which registration
    /// they have is not said: anyone who knows an id number could ask.
    static let registeredAlready = Problem(
        status: 409, code: "citizen_limit_reached", title: "Citizen limit reached",
        detail: "this citizen is registered in this lottery already: one registration each")

    static func notLottery(_ campaign: String) -> Problem {
        Problem(status: 403, code: "campaign_not_open", title: "Campaign is not open",
                detail: "campaign \(campaign) is first come, first served: reserve a slot instead (POST …/reservations)")
    }

    static func lotteryOnly(_ campaign: String) -> Problem {
        Problem(status: 403, code: "campaign_not_open", title: "Campaign is not open",
                detail: "campaign \(campaign) allocates its places by lottery: register instead (POST …/registrations)")
    }
}
