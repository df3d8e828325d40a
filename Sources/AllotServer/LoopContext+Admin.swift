import AllotDomain
import EventHTTP

/// Operator routes: decoded and validated on the loop (pure work), then run
/// on the admin worker, whose answer comes back to this loop.
extension LoopContext {
    func dispatchAdmin(_ route: Route, exchange: HTTPExchange) {
        guard exchange.bodyCount <= config.adminBodyBytesMax else {
            return exchange.send(.problem(.bodyTooLarge(config.adminBodyBytesMax)))
        }
        let job: AdminWorker.ThrowingJob
        do {
            job = try adminJob(route, body: exchange.body())
        } catch {
            return exchange.send(.problem(error))
        }
        let bound = LoopBound(exchange, loop: loop)
        let logger = shared.logger
        let accepted = shared.admin.submit({ store in
            do { return try job(store) } catch {
                logger.error("admin request failed", metadata: ["error": "\(error)"])
                return .problem(.unavailable("the change could not be completed; it is safe to send it again"))
            }
        }, reply: { answer in
            bound.loop.execute { bound.wrapped.send(answer) }
        })
        if !accepted { exchange.send(.problem(.unavailable("too many operator requests queued", retryAfterSeconds: 2))) }
    }

    private func adminJob(_ route: Route, body: [UInt8]) throws(Problem) -> @Sendable (AdminStore) throws -> Answer {
        switch route {
        case .createCampaign:
            let campaign = try Campaign.decode(Fields.parse(body))
            return { try $0.createCampaign(campaign) }
        case .patchCampaign(let id):
            let fields = try Fields.parse(body)
            return { try $0.patchCampaign(id, fields) }
        case .putSites(let id):
            let sites = try Site.decodeList(Fields.parse(body))
            return { try $0.putSites(id, sites) }
        case .putSlots(let id):
            let slots = try Slot.decodeList(Fields.parse(body))
            return { try $0.putSlots(id, slots) }
        case .patchSlot(let id, let slot):
            let capacity = try Slot.decodeCapacity(Fields.parse(body))
            return { try $0.patchSlotCapacity(id, slot: slot, capacity: capacity) }
        case .putRateLimits(let id):
            let limits = try RateLimits.decode(Fields.parse(body))
            return { try $0.putRateLimits(id, limits) }
        case .campaignStats(let id):
            return { try $0.stats(id) }
        default:
            preconditionFailure("not an admin route: \(route)")
        }
    }
}
