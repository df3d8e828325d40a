import AllotDomain
import EventHTTP
import EventLoops

/// Operator routes: decoded and validated on the loop (pure work), then run
/// on the admin worker, whose answer comes back to this loop.
final class OperatorRoutes {
    let loop: EventLoop
    let shared: SharedServices
    var config: ServerConfig { shared.config }

    init(loop: EventLoop, shared: SharedServices) {
        self.loop = loop
        self.shared = shared
    }

    /// `GET /open/v1/campaigns/{cid}/draw.json` or `results.csv`: a
    /// published draw's file, streamed from disk on a thread of its own.
    func drawFile(_ campaign: String, _ file: DrawFile, exchange: HTTPExchange) {
        guard config.role == .full else { return exchange.send(.problem(Self.noDatabase)) }
        guard let pending = PendingExchange(exchange, loop: loop) else { return exchange.send(.problem(.busy)) }
        StoredDraw.streamFile(file, campaign: campaign, databasePath: config.databasePath, exchange: pending, logger: shared.logger)
    }

    /// `GET …/reservations.csv`: streamed from SQLite on a thread of its own.
    func export(_ campaign: String, exchange: HTTPExchange) {
        guard config.role == .full else { return exchange.send(.problem(Self.noDatabase)) }
        guard let pending = PendingExchange(exchange, loop: loop) else { return exchange.send(.problem(.busy)) }
        CSVExport.start(campaign: campaign, databasePath: config.databasePath, exchange: pending, logger: shared.logger)
    }

    /// A front node's answer to an operator request (its worker says the same).
    static let noDatabase = Problem.unavailable("this node has no database: operator requests go to a node that has")

    func dispatchAdmin(_ route: Route, query: Substring?, actor: String, exchange: HTTPExchange) {
        guard config.role == .full else { return exchange.send(.problem(Self.noDatabase)) }
        guard exchange.bodyCount <= config.adminBodyBytesMax else {
            return exchange.send(.problem(.bodyTooLarge(config.adminBodyBytesMax)))
        }
        guard let pending = PendingExchange(exchange, loop: loop) else { return exchange.send(.problem(.busy)) }
        perform(route, query: query, body: Array(exchange.body), actor: actor) { pending.answer($0) }
    }

    /// An operator request, from the API or the dashboard, with the same
    /// checks and audit rows: validated here, run on the admin worker;
    /// `reply` gets its answer, on any thread.
    func perform(_ route: Route, query: Substring? = nil, body: [UInt8], actor: String,
                 reply: @escaping @Sendable (Answer) -> Void) {
        guard config.role == .full else { return reply(.problem(Self.noDatabase)) }
        let job: AdminWorker.ThrowingJob
        do {
            job = try adminJob(route, query: query, body: body, actor: actor)
        } catch {
            return reply(.problem(error))
        }
        let logger = shared.logger, catalogs = shared.catalogs
        let changesConfiguration = route.neededRole == .admin
        let accepted = shared.admin.submit({ store in
            do { return try job(store) } catch let problem as Problem { return .problem(problem) } catch {
                logger.error("admin request failed", metadata: ["error": "\(error)"])
                return .problem(.unavailable("the change could not be completed; it is safe to send it again"))
            }
        }, reply: { answer in
            // A change is answered once every loop's snapshot shows it, so
            // the next reservation anywhere acts on it.
            guard changesConfiguration, answer.status < 300 else { return reply(answer) }
            catalogs.refreshEverywhere { reply(answer) }
        })
        if !accepted { reply(.problem(.unavailable("too many operator requests queued", retryAfterSeconds: 2))) }
    }

    private func adminJob(_ route: Route, query: Substring?, body: [UInt8],
                          actor: String) throws(Problem) -> @Sendable (AdminStore) throws -> Answer {
        switch route {
        case .createCampaign:
            let campaign = try Campaign.decode(Fields.parse(body))
            return { OperatorAnswers.campaign(try $0.createCampaign(campaign, by: actor), status: 201) }
        case .patchCampaign(let id):
            let fields = try Fields.parse(body)
            return { OperatorAnswers.campaign(try $0.patchCampaign(id, fields, by: actor), status: 200) }
        case .putSites(let id):
            let sites = try Site.decodeList(Fields.parse(body))
            return { OperatorAnswers.sitesPut(try $0.putSites(id, sites, by: actor)) }
        case .putSlots(let id):
            let slots = try Slot.decodeList(Fields.parse(body))
            return { OperatorAnswers.slotsPut(slots.count, raised: try $0.putSlots(id, slots, by: actor)) }
        case .patchSlot(let id, let slot):
            let capacity = try Slot.decodeCapacity(Fields.parse(body))
            return { OperatorAnswers.slot(try $0.patchSlotCapacity(id, slot: slot, capacity: capacity, by: actor)) }
        case .putRateLimits(let id):
            let limits = try RateLimits.decode(Fields.parse(body))
            return { OperatorAnswers.rateLimits(try $0.putRateLimits(id, limits, by: actor)) }
        case .campaignStats(let id):
            return { OperatorAnswers.stats(try $0.stats(id)) }
        case .commitDraw(let id):
            return { .json(201, try $0.commitDraw(id, by: actor).json) }
        case .runDraw(let id):
            let fields = try Fields.parse(body)
            try fields.allowOnly(["public_value"])
            let publicValue = try fields.text("public_value", bytesMax: LotterySettings.sourceBytesMax)
            let config = config, logger = shared.logger
            return { store in
                let (campaign, draw) = try store.startDraw(id, publicValue: publicValue, by: actor)
                DrawRunner.start(campaign: campaign, draw: draw, config: config, logger: logger)
                var answer = Answer.json(202, draw.json)
                answer.headers.append(("Location", "/v1/campaigns/\(id)/draw"))
                return answer
            }
        case .getDraw(let id):
            return { store in
                // A draft's draw is not shown, as the draft is not.
                guard try store.loadCampaign(id).map({ $0.status != .draft }) == true,
                      let draw = try DrawRecords(database: store.database).load(id) else { throw Problem.notFound("no draw for this campaign") }
                return .json(200, draw.json)
            }
        case .getDrawReceipt(let id):
            let secret = config.citizenSecret, databasePath = config.databasePath
            return { .json(200, try DrawReceipts(database: $0.database, databasePath: databasePath, citizenSecret: secret)
                .receipt(id.text).json) }
        case .auditTrail:
            let after = try Self.integerParameter("after", in: query, default: 0, range: 0...Int64.max)
            let limit = try Self.integerParameter("limit", in: query, default: 100, range: 1...Int64(AuditLog.pageRowsMax))
            return { OperatorAnswers.auditPage(try $0.auditPage(after: after, limit: Int(limit)), after: after) }
        case .reservationEvents:
            let after = try Self.integerParameter("after", in: query, default: 0, range: 0...Int64.max)
            let limit = try Self.integerParameter("limit", in: query, default: 100, range: 1...Int64(AuditLog.pageRowsMax))
            return { OperatorAnswers.eventsPage(try $0.reservationEventsPage(after: after, limit: Int(limit)), after: after) }
        default:
            throw .notFound("no such path")
        }
    }

    private static func integerParameter(_ name: String, in query: Substring?, default value: Int64,
                                         range: ClosedRange<Int64>) throws(Problem) -> Int64 {
        guard let text = QueryString.value(of: name, in: query) else { return value }
        guard let number = Int64(text), range.contains(number) else {
            throw .invalidField(name, "must be an integer in \(range.lowerBound)...\(range.upperBound)")
        }
        return number
    }
}
