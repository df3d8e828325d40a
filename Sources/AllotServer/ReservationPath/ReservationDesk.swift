import AllotDomain
import EventHTTP
import EventLoops
import RedisClient

/// `POST /v1/campaigns/{cid}/reservations`: validate on the loop, then one
/// script run in Redis decides and records everything.
final class ReservationDesk {
    static let idempotencyKeyBytesMax = 128

    /// 1 to 128 visible ASCII characters (API.md, Idempotency-Key).
    static func isIdempotencyKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.count <= idempotencyKeyBytesMax && key.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }
    let loop: EventLoop
    let redis: any RedisRouting
    let reads: CitizenReads
    let shared: SharedServices
    /// This loop's own metric cells.
    let metrics: LoopRequestMetrics
    /// Holds 201s until a replica has their writes (`--durability replicated`).
    let replication: ReplicationGate
    /// Moves places into a spread campaign's empty bucket.
    let refill: BucketRefill
    var config: ServerConfig { shared.config }
    var catalog: Catalog { reads.catalog }
    private var random = BufferedRandom()
    /// Refusals decided on this loop (no script ran to count them), per
    /// campaign and stats field, since the last flush to Redis.
    private var rejections: [String: [String: Int]] = [:]

    init(loop: EventLoop, redis: any RedisRouting, reads: CitizenReads, shared: SharedServices, metrics: LoopRequestMetrics) {
        self.loop = loop
        self.redis = redis
        self.reads = reads
        self.shared = shared
        self.metrics = metrics
        refill = BucketRefill(redis: redis, logger: shared.logger, replicaAcks: shared.config.replicaAcksRequired,
                              replicaWaitMillis: shared.config.replicaWaitMillisInForce,
                              killAfterDebit: shared.config.killAfterDebit)
        replication = ReplicationGate(loop: loop, redis: redis, acksRequired: shared.config.replicaAcksRequired,
                                      waitMillis: shared.config.replicaWaitMillisInForce)
    }

    private func countRejection(_ campaign: String, _ field: String) {
        rejections[campaign, default: [:]][field, default: 0] += 1
    }

    /// Adds the refusals counted on this loop to each campaign's stats in
    /// Redis: one HINCRBY per campaign and reason, not one per attempt.
    func flushRejections() {
        guard !rejections.isEmpty, redis.isConnected else { return }
        for (campaign, counts) in rejections {
            let keys = CampaignKeys(campaign)
            for (field, count) in counts {
                redis.send(["HINCRBY", keys.stats, field, String(count)], slot: keys.slot) { _ in }
            }
        }
        rejections.removeAll(keepingCapacity: true)
    }

    /// The API's POST: the JSON body and `Idempotency-Key`, answered in JSON.
    func reserve(campaignID: String, exchange: HTTPExchange) {
        let reply = APIReply(exchange: LoopBound(exchange, loop: loop))
        guard exchange.bodyCount <= config.citizenBodyBytesMax else {
            return refuse(.bodyTooLarge(config.citizenBodyBytesMax), campaignID: campaignID, reply: reply)
        }
        reserve(campaignID: campaignID, reply: reply) { [self] view in prepareAttempt(view: view, exchange: exchange) }
    }

    /// A booking from the pages (BookingPages): the citizen already keyed
    /// from a form, the idempotency key the form carried.
    func reserve(campaignID: String, booking: PageBooking, reply: some AttemptReply) {
        reserve(campaignID: campaignID, reply: reply) { [self] view in
            guard let slot = view.slot(booking.slotID) else { return .failure(.notFound("no such slot")) }
            // The rules again, at the booking: they may have changed since the form.
            return prepareAttempt(view: view, slot: slot, idempotencyKey: booking.idempotencyKey, facts: booking.facts) {
                (booking.citizenKey, booking.address)
            }
        }
    }

    private func reserve(campaignID: String, reply: some AttemptReply,
                         prepare: @escaping (CampaignView) -> Result<Preparation, Problem>) {
        // A campaign the loop knows (nearly every attempt) goes on at once; one
        // that left the hot set is fetched first.
        if let found = reads.knownVisibleCampaign(campaignID) { return reserve(found.flatMap(prepare), campaignID: campaignID, reply: reply) }
        reads.visibleCampaign(campaignID) { [self] found in reserve(found.flatMap(prepare), campaignID: campaignID, reply: reply) }
    }

    private func reserve(_ prepared: Result<Preparation, Problem>, campaignID: String, reply: some AttemptReply) {
        switch prepared {
        case .failure(let problem): refuse(problem, campaignID: campaignID, reply: reply)
        case .success(.attempt(let attempt)): run(attempt, reply: reply)
        case .success(.soldOut(let view, let slot)): refuseSoldOut(slot, in: view, reply: reply)
        case .success(.soldOutUnlessReplay(let attempt, let view)):
            refuseUnlessAnswered(attempt, storing: "slot_full", reply: reply) { [self] in refuseSoldOut(attempt.slot, in: view, reply: reply) }
        case .success(.notEligibleUnlessReplay(let attempt, let reason)):
            refuseUnlessAnswered(attempt, storing: "not_eligible|" + reason.rawValue, reply: reply) { [self] in
                refuse(.notEligible(reason), campaignID: attempt.campaignID, reply: reply)
            }
        }
    }

    /// A refusal decided on the loop, for a request whose key may have an
    /// answer to replay: one SET NX GET of it, not the reservation function.
    /// No answer there: this refusal becomes the key's answer (a retry with
    /// the key gets it again, as the contract says) and is sent. One there:
    /// the function replays it (or says the key was used otherwise), so a
    /// booking made before the refusal held answers as it did.
    private func refuseUnlessAnswered(_ attempt: ReservationAttempt, storing answer: String, reply: some AttemptReply,
                                      refuse: @escaping () -> Void) {
        redis.send(["SET", attempt.keys.idempotency(attempt.idempotencyKeyHash), attempt.fingerprint + "|" + answer,
                    "NX", "EX", String(config.idempotencyTTLSeconds), "GET"], slot: attempt.keys.slot) { [self] result in
            switch result {
            case .success(.null): refuse()
            case .success(let stored) where stored.errorMessage == nil: run(attempt, reply: reply)
            default:
                metrics.reservationOutcome("unavailable")
                reply.refused(.unavailable("the reservation store is unreachable; nothing was reserved"))
            }
        }
    }

    private func refuseSoldOut(_ slot: Slot, in view: CampaignView, reply: some AttemptReply) {
        countRejection(view.campaign.id, "rej_slot_full")
        metrics.reservationOutcome("slot_full")
        reply.soldOut(slot, in: view)
    }

    private func refuse(_ problem: Problem, campaignID: String, reply: some AttemptReply) {
        // Counted only for a hot campaign: a hostile client naming random
        // campaigns must not grow this map or Redis.
        // A rule's refusal, or a lottery's (not open to reservations), is
        // counted as what it is; the rest of the loop's refusals as invalid.
        let outcome = problem.status == 503 ? "unavailable" : problem.status == 404 ? "not_found"
            : ["not_eligible", "campaign_not_open"].contains(problem.code) ? problem.code : "invalid"
        if problem.status != 503, catalog.campaigns[campaignID] != nil {
            countRejection(campaignID, outcome == "not_found" ? "rej_invalid" : "rej_" + outcome)
        }
        metrics.reservationOutcome(outcome)
        reply.refused(problem)
    }

    /// Runs reserve.lua in the citizen's bucket. `mayRefill`: a spread
    /// campaign's first try, whose empty bucket is refilled (BucketRefill)
    /// before the answer.
    private func run(_ attempt: ReservationAttempt, reply: some AttemptReply) {
        run(attempt, mayRefill: attempt.isSpread, reply: reply)
    }

    /// How long, and how many rounds, one attempt may go on refilling:
    /// under contention places moved in go to the attempts that were first,
    /// and the others try again (at the end of a surge, the last places hop
    /// between buckets). Past either the answer is 503, never a `slot_full`
    /// that may not be true. The time bounds the citizen's wait; the rounds
    /// bound the Redis work one attempt may cause.
    static let refillWaitMicrosMax: Int64 = 1_000_000
    static let refillRoundsMax = 32
    static let inTransitRetryMillis = 20

    /// What an attempt has spent on refills so far.
    struct RefillBudget {
        var sinceMicros: Int64 = 0
        var rounds = 0
    }

    private func run(_ attempt: ReservationAttempt, mayRefill: Bool, refills: RefillBudget = RefillBudget(),
                     reply: some AttemptReply) {
        let keys = attempt.keys
        // Replicated: a shard whose replica is not confirming is refused
        // before anything is written there.
        guard !replication.refuses(slot: keys.slot) else {
            metrics.reservationOutcome("unavailable")
            return reply.refused(.unavailable("no replica is confirming reservations on this shard now; nothing was reserved",
                                              retryAfterSeconds: 1))
        }
        let sentMicros = monotonicMicros()
        // reserve.lua's keys and arguments, in its order, written straight
        // into the wire format.
        var command = Scripts.reserve.command(keys: 13, arguments: 11)
        command.append(keys.config)
        command.append(keys.remaining)
        command.append(keys.holdings)
        command.append(keys.stats)
        command.append(keys.records)
        command.append(keys.stream)
        command.append(keys.globalBucket)
        keys.appendIPBucket(attempt.address, to: &command)
        keys.appendCitizenBucket(attempt.citizenKey, to: &command)
        keys.appendIdempotency(attempt.idempotencyKeyHash, to: &command)
        keys.appendSeriesLedger(attempt.citizenKey, to: &command)
        command.append(keys.holds)
        command.append(keys.holders)
        command.append(attempt.slot.id)
        command.append(attempt.slot.siteID)
        command.append(attempt.id.text)
        command.append(attempt.code)
        command.append(attempt.citizenKey)
        command.append(attempt.fingerprint)
        command.append(config.idempotencyTTLSeconds)
        command.append(config.streamEntriesMax)
        command.append(attempt.isSpread ? (mayRefill ? "try" : "spread") : "")
        if let series = attempt.view.campaign.series {
            command.append(series.limit)
            command.append(Int(series.windowMillis))
        } else {
            command.append("")
            command.append("")
        }
        ReserveCall(command, on: redis, desk: self, attempt: attempt, reply: reply, sentMicros: sentMicros, refills: refills).send()
    }

    /// A reservation's script run and what its answer needs: one object
    /// carries the attempt to its reply.
    private final class ReserveCall<Reply: AttemptReply>: FunctionCall {
        let desk: ReservationDesk
        let attempt: ReservationAttempt
        let reply: Reply
        let sentMicros: Int64
        /// Refills this attempt has waited for.
        let refills: RefillBudget

        init(_ command: RedisCommand, on redis: any RedisRouting, desk: ReservationDesk, attempt: ReservationAttempt,
             reply: Reply, sentMicros: Int64, refills: RefillBudget) {
            self.desk = desk
            self.attempt = attempt
            self.reply = reply
            self.sentMicros = sentMicros
            self.refills = refills
            super.init(command, slot: attempt.keys.slot, on: redis)
        }

        override func completed(_ result: Result<RedisReplyView, RedisFailure>) {
            desk.metrics.reserveRoundTrip(micros: monotonicMicros() - sentMicros)
            let (answer, outcome) = desk.answer(for: result, attempt: attempt)
            switch answer {
            case .created(let reservation) where desk.replication.isActive:
                desk.sendOnceReplicated(reservation, outcome: outcome, hasKey: !attempt.fingerprint.isEmpty, to: reply)
            case .created(let reservation):
                desk.metrics.reservationOutcome(outcome)
                reply.created(reservation)
            case .refused(let problem):
                desk.metrics.reservationOutcome(outcome)
                reply.refused(problem)
            case .bucketEmpty:
                desk.refillThenRun(attempt, refills: refills, reply: reply)
            }
        }
    }

    /// The citizen's bucket had no place of the slot: places are moved in,
    /// then the attempt runs again. When no source had any, that run may
    /// not refill: its `slot_full` is the answer (no bucket and no pool
    /// had a place of the slot).
    private func refillThenRun(_ attempt: ReservationAttempt, refills spent: RefillBudget, reply: some AttemptReply) {
        let now = monotonicMicros()
        var refills = spent
        if refills.sinceMicros == 0 { refills.sinceMicros = now }
        refills.rounds += 1
        guard now - refills.sinceMicros < Self.refillWaitMicrosMax, refills.rounds <= Self.refillRoundsMax else {
            metrics.reservationOutcome("unavailable")
            return reply.refused(.unavailable("places are being moved to where they are asked for; try again", retryAfterSeconds: 1))
        }
        refill.refill(attempt.view, bucket: attempt.bucket, slot: attempt.slot) { [self] outcome in
            switch outcome {
            case .moved: run(attempt, mayRefill: true, refills: refills, reply: reply)
            case .noneLeft: run(attempt, mayRefill: false, refills: refills, reply: reply)
            case .inTransit:
                // Places are on their way between shards (a move under way,
                // or one left half-way for the sweeper): not sold out; look again shortly.
                loop.schedule(afterMillis: Self.inTransitRetryMillis) { [self] in
                    run(attempt, mayRefill: true, refills: refills, reply: reply)
                }
            case .failed:
                metrics.reservationOutcome("unavailable")
                reply.refused(.unavailable("the reservation store is unreachable; nothing was reserved"))
            }
        }
    }

    /// `--durability replicated`: the 201 goes once a replica has the write;
    /// else a 503, since the reservation was made but may not survive a
    /// failover (a key replays its answer).
    private func sendOnceReplicated(_ reservation: Reservation, outcome: String, hasKey: Bool, to reply: some AttemptReply) {
        let metrics = metrics
        // In the reply's completion: the connection that made the write.
        replication.hold(redis.replyingConnection) { replicated in
            guard replicated else {
                metrics.reservationOutcome("unavailable")
                return reply.refused(.unavailable(Self.unreplicatedDetail(hasKey: hasKey), retryAfterSeconds: 1))
            }
            metrics.reservationOutcome(outcome)
            reply.created(reservation)
        }
    }

    private static func unreplicatedDetail(hasKey: Bool) -> String {
        "the reservation was made but no replica confirmed it in time; "
            + (hasKey ? "send it again with the same Idempotency-Key for its answer"
                      : "a retry finds the place already yours (citizen_limit_reached); send an Idempotency-Key "
                        + "to get the answer itself back")
    }

    /// What a valid request goes on to: the script, or a refusal at once.
    private enum Preparation {
        case attempt(ReservationAttempt)
        case soldOut(CampaignView, Slot)
        /// Sold out, with an Idempotency-Key whose stored answer must be
        /// replayed if there is one.
        case soldOutUnlessReplay(ReservationAttempt, CampaignView)
        /// Refused by an eligibility rule, likewise.
        case notEligibleUnlessReplay(ReservationAttempt, NotEligibleReason)
    }

    private func prepareAttempt(view: CampaignView, exchange: HTTPExchange) -> Result<Preparation, Problem> {
        let body: ReserveRequest
        do { body = try ReserveRequest.decode(exchange.body) } catch { return .failure(error) }
        guard let slot = view.slot(body.slotID) else { return .failure(.notFound("no such slot")) }
        guard let normalized = view.campaign.idScheme.normalize(body.citizenID) else { return .failure(.invalidCitizenID) }
        // Read from the id only for a campaign with rules: the hot path of
        // one without pays nothing for them.
        let facts = view.campaign.eligibility.isEmpty ? nil : EligibilityFacts(normalizedID: normalized, scheme: view.campaign.idScheme)
        return prepareAttempt(view: view, slot: slot, idempotencyKey: exchange.header("Idempotency-Key"), facts: facts) { [shared] in
            (shared.keyer.citizenKey(normalizedID: normalized), shared.clientAddress(exchange))
        }
    }

    /// `identify`: the citizen key and the client's address, worked out
    /// only when the attempt goes on (a sold-out slot is refused first).
    /// `facts`: what the campaign's eligibility rules read of the id (nil
    /// when it has none). They
    /// read the id and the slot alone (nothing another attempt changes), so
    /// deciding them here is deciding them in the attempt's own step; the
    /// raw id never reaches Redis.
    private func prepareAttempt(view: CampaignView, slot: Slot, idempotencyKey: String?, facts: EligibilityFacts?,
                                identify: () -> (citizenKey: String, address: String)) -> Result<Preparation, Problem> {
        // A lottery's places are drawn, not reserved (RegistrationDesk).
        guard view.campaign.allocation == .firstCome else { return .failure(.lotteryOnly(view.campaign.id)) }
        let notEligible = facts.flatMap { view.campaign.eligibility.refusal($0, slotStartsAtMillis: slot.startsAtMillis) }
        if idempotencyKey == nil, let notEligible { return .failure(.notEligible(notEligible)) }
        let soldOut = isSoldOut(slot, in: view)
        if idempotencyKey == nil, soldOut { return .success(.soldOut(view, slot)) }
        let (citizenKey, address) = identify()
        // Without a key the script gets an empty fingerprint and never reads
        // or writes the placeholder key "-".
        var idempotencyKeyHash = "-", fingerprint = ""
        if let key = idempotencyKey {
            guard Self.isIdempotencyKey(key) else {
                return .failure(.invalidField("Idempotency-Key", "must be 1 to 128 visible ASCII characters"))
            }
            // Keyed, like the citizen id: a client may put anything in it.
            idempotencyKeyHash = shared.keyer.citizenKey(normalizedID: "idempotency:" + key)
            fingerprint = citizenKey + ":" + slot.id
        }
        // A spread campaign: the citizen's bucket, and its route in the id.
        let bucket = view.layout.isSpread ? view.layout.buckets.bucket(ofCitizenKey: citizenKey) : 0
        guard let route = view.route(ofBucket: bucket) else {
            return .failure(.unavailable("the campaign is being set up; try again shortly"))
        }
        let id = ReservationID.make(millis: UInt64(WallClock.nowMillis()), route: route, cipher: shared.routes, using: &random)
        let attempt = ReservationAttempt(
            id: id, code: PickupCode.make(using: &random), campaignID: view.campaign.id, view: view, bucket: bucket,
            isSpread: view.layout.isSpread, keys: view.layout.bucketKeys[bucket], slot: slot,
            citizenKey: citizenKey, address: address, limit: view.campaign.perCitizenLimit,
            idempotencyKeyHash: idempotencyKeyHash, fingerprint: fingerprint)
        if let notEligible { return .success(.notEligibleUnlessReplay(attempt, notEligible)) }
        return .success(soldOut ? .soldOutUnlessReplay(attempt, view) : .attempt(attempt))
    }

    /// Sold out is decided on the loop, with no Redis call, when a fresh
    /// snapshot shows the slot without places and the campaign open (the
    /// script would say the same; it is the surge's commonest answer). A
    /// place a cancellation frees is offered again at the next refresh
    /// (`snapshotRefreshMillis`); an operator's capacity change reaches every
    /// loop before it is answered. A request with an Idempotency-Key costs
    /// one SET NX GET of its stored answer, which must be replayed if there
    /// is one (a careful client sends a key with every attempt). A citizen at their
    /// limit hears `slot_full` here rather than `citizen_limit_reached`:
    /// both are true, and the place is what they cannot have.
    private func isSoldOut(_ slot: Slot, in view: CampaignView) -> Bool {
        // The snapshot's age limit is the reads' (5 s): under a surge a
        // refresh can take longer than its period, and that is when this
        // refusal matters most. A place freed elsewhere meanwhile waits for
        // the next refresh.
        guard !view.remainingIsPartial, let left = view.remaining[slot.id], left <= 0, view.campaign.status == .open,
              catalog.ageMillis() <= Int64(config.snapshotStaleMillisMax) else { return false }
        let now = WallClock.nowMillis()
        return now >= view.campaign.opensAtMillis && now < view.campaign.closesAtMillis
    }

    /// What a script run is answered with: a reservation (new or replayed),
    /// or a refusal.
    private enum AttemptAnswer {
        case created(Reservation)
        case refused(Problem)
        /// A spread campaign's bucket is empty: refill, then try again.
        case bucketEmpty
    }

    /// The answer to a script run, and its outcome for metrics.
    private func answer(for result: Result<RedisReplyView, RedisFailure>, attempt: ReservationAttempt) -> (AttemptAnswer, String) {
        guard case .success(let reply) = result else {
            return (.refused(.unavailable("the reservation store is unreachable; nothing was reserved")), "unavailable")
        }
        let outcome: ReserveOutcome
        do { outcome = try ReserveOutcome(reply) } catch {
            shared.logger.error("reserve script failed", metadata: ["campaign": "\(attempt.campaignID)", "error": "\(error)"])
            return (.refused(.unavailable("the reservation store failed; nothing was reserved")), "unavailable")
        }
        return (answer(for: outcome, attempt: attempt), outcome.metricName)
    }

    private func answer(for outcome: ReserveOutcome, attempt: ReservationAttempt) -> AttemptAnswer {
        // The script writes nothing when it refuses: the refusal is counted
        // here and reaches the stats with the loop's next flush.
        if let field = outcome.rejectionStatsField { countRejection(attempt.campaignID, field) }
        switch outcome {
        case .confirmed(let createdAt):
            catalog.placesChanged(campaign: attempt.campaignID, bucket: attempt.bucket, slot: attempt.slot.id, by: -1)
            return created(attempt, id: attempt.id, code: attempt.code, createdAt: createdAt)
        case .held(let createdAt, let expiresAt):
            catalog.placesChanged(campaign: attempt.campaignID, bucket: attempt.bucket, slot: attempt.slot.id, by: -1)
            return created(attempt, id: attempt.id, code: attempt.code, createdAt: createdAt, heldUntil: expiresAt)
        case .replay(.confirmed(let id, let code, let createdAt)): return created(attempt, id: id, code: code, createdAt: createdAt)
        case .replay(.held(let id, let code, let createdAt, let expiresAt)):
            return created(attempt, id: id, code: code, createdAt: createdAt, heldUntil: expiresAt)
        case .replay(.holdPending), .holdPending: return .refused(.holdPending)
        case .slotFull:
            catalog.slotIsFull(campaign: attempt.campaignID, slot: attempt.slot.id)
            return .refused(.slotFull(attempt.slot.id))
        // (The snapshot is left as it is: other buckets may have places.)
        case .slotKeptForLine: return .refused(.slotFull(attempt.slot.id))
        case .replay(.slotFull): return .refused(.slotFull(attempt.slot.id))
        case .replay(.citizenLimitReached(let limit)), .citizenLimitReached(let limit):
            return .refused(.citizenLimitReached(limit))
        case .replay(.notEligible(let reason)), .notEligible(let reason): return .refused(.notEligible(reason))
        case .idempotencyConflict: return .refused(.idempotencyConflict)
        case .campaignNotFound: return .refused(.notFound("no such campaign"))
        case .slotNotFound: return .refused(.notFound("no such slot"))
        case .campaignNotOpen: return .refused(.campaignNotOpen(attempt.campaignID))
        case .rateLimited(let rejection): return .refused(.rateLimited(rejection))
        case .backlogFull:
            return .refused(.unavailable("reservations are not being recorded fast enough; nothing was reserved",
                                         retryAfterSeconds: 5))
        case .bucketEmpty: return .bucketEmpty
        }
    }

    /// `heldUntil`: a hold's expiry (a campaign with holds).
    private func created(_ attempt: ReservationAttempt, id: ReservationID, code: String, createdAt: Int64,
                         heldUntil: Int64? = nil) -> AttemptAnswer {
        .created(Reservation(id: id, campaignID: attempt.campaignID, slotID: attempt.slot.id, siteID: attempt.slot.siteID,
                             status: heldUntil == nil ? .confirmed : .held, code: code, createdAtMillis: createdAt,
                             expiresAtMillis: heldUntil))
    }
}

/// Where an attempt's answer goes: the API's JSON (APIReply) or the booking
/// pages (BookingPages). Called on the attempt's loop, once.
protocol AttemptReply {
    /// A reservation: new, or replayed for the same idempotency key.
    func created(_ reservation: Reservation)
    func refused(_ problem: Problem)
    /// `slot` sold out, as a fresh snapshot `view` shows it.
    func soldOut(_ slot: Slot, in view: CampaignView)
}

/// The API's answers: 201 with the reservation, or problem+json.
struct APIReply: AttemptReply {
    let exchange: LoopBound<HTTPExchange>

    func created(_ reservation: Reservation) { exchange.wrapped.sendCreated(reservation) }
    func refused(_ problem: Problem) { exchange.wrapped.send(.problem(problem)) }
    /// The surge's commonest answer, made once per slot and snapshot.
    func soldOut(_ slot: Slot, in view: CampaignView) { exchange.wrapped.send(view.soldOutAnswer(slot)) }
}

/// A booking as the pages hand it to the desk: the id already keyed.
struct PageBooking {
    let slotID: String
    let citizenKey: String
    /// What the eligibility rules read of the id (the id itself is gone).
    let facts: EligibilityFacts
    let idempotencyKey: String
    /// The client's address, for its rate limit.
    let address: String
}

extension HTTPExchange {
    /// 201 with the reservation, written into the loop's body buffer, and
    /// its `Location`.
    func sendCreated(_ reservation: Reservation) {
        respond(status: 201, contentType: Answer.jsonType, location: HTTPLocation("/v1/reservations/", reservation.id.text)) { body in
            JSONWriter.appending(to: &body) { reservation.write(to: &$0) }
        }
    }
}

/// A validated attempt, ready for the script.
struct ReservationAttempt {
    let id: ReservationID
    let code: String
    let campaignID: String
    /// The campaign as this loop saw it when the attempt began (a refill
    /// moves places by it).
    let view: CampaignView
    /// The citizen's bucket (0 when the campaign has one), and its keys.
    let bucket: Int
    let isSpread: Bool
    let keys: CampaignKeys
    let slot: Slot
    let citizenKey: String
    let address: String
    let limit: Int
    let idempotencyKeyHash: String
    let fingerprint: String
}
