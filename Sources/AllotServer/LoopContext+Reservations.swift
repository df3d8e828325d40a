import AllotDomain
import EventHTTP
import RedisClient

/// `GET`/`DELETE /v1/reservations/{rid}` and `POST …/redeem`. The id names no
/// campaign, so the record is looked for under each campaign's tag: one
/// pipelined HMGET per campaign (a handful), which keeps every script on one
/// cluster slot.
extension LoopContext {
    static let recordFields = ["st", "slot", "site", "code", "t"]

    func getReservation(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        locate(id) { found in
            switch found {
            case .failure(let problem): bound.wrapped.send(.problem(problem))
            case .success(let (campaign, fields)):
                guard let reservation = Self.reservation(id, campaign: campaign, fields: fields) else {
                    return bound.wrapped.send(.problem(.notFound("no such reservation")))
                }
                bound.wrapped.send(.json(200, reservation.json))
            }
        }
    }

    /// Cancel (citizen) or redeem (staff): confirmed → `target`.
    func transition(_ id: ReservationID, to target: ReservationStatus, exchange: HTTPExchange) {
        precondition(target != .confirmed)
        let bound = LoopBound(exchange, loop: loop)
        locate(id) { [self] found in
            guard case .success(let (campaign, _)) = found else {
                return bound.wrapped.send(.problem(found.failureProblem ?? .notFound("no such reservation")))
            }
            let keys = CampaignKeys(campaign)
            redis.run(Scripts.transition, keys: [keys.record(id.text), keys.remaining, keys.holdings, keys.stats, keys.stream],
                      arguments: [id.text, target.rawValue]) { result in
                bound.wrapped.send(Self.transitionAnswer(result, id: id, campaign: campaign, target: target))
            }
        }
    }

    private static func transitionAnswer(_ result: Result<RedisReply, RedisFailure>, id: ReservationID,
                                         campaign: String, target: ReservationStatus) -> Answer {
        guard case .success(let reply) = result, let parts = reply.elements, let outcome = parts.first?.text else {
            return .problem(.unavailable("the reservation store is unreachable; nothing was changed"))
        }
        switch outcome {
        case "ok" where parts.count == 5:
            let reservation = Reservation(id: id, campaignID: campaign, slotID: parts[1].text ?? "", siteID: parts[2].text ?? "",
                                          status: target, code: parts[3].text ?? "", createdAtMillis: parts[4].integer ?? 0)
            return .json(200, reservation.json)
        case "refused": return .problem(target == .cancelled ? .notCancellable : .notRedeemable)
        default: return .problem(.notFound("no such reservation"))
        }
    }

    /// Finds the campaign holding reservation `id`, with its record fields.
    private func locate(_ id: ReservationID, completion: @escaping (Result<(String, [RedisReply]), Problem>) -> Void) {
        guard let catalog = freshCatalog else { return completion(.failure(.unavailable("reservations are not available"))) }
        let campaigns = catalog.campaigns.keys.sorted()
        guard !campaigns.isEmpty else { return completion(.failure(.notFound("no such reservation"))) }
        var outstanding = campaigns.count
        var found: (String, [RedisReply])?
        var unavailable = false
        for campaign in campaigns {
            redis.send(["HMGET", CampaignKeys(campaign).record(id.text)] + Self.recordFields) { result in
                switch result {
                case .success(let reply):
                    if let fields = reply.elements, fields.count == Self.recordFields.count, fields[0] != .null {
                        found = (campaign, fields)
                    }
                case .failure: unavailable = true
                }
                outstanding -= 1
                guard outstanding == 0 else { return }
                if let found { completion(.success(found)) }
                else if unavailable { completion(.failure(.unavailable("reservations are not available"))) }
                else { completion(.failure(.notFound("no such reservation"))) }
            }
        }
    }

    private static func reservation(_ id: ReservationID, campaign: String, fields: [RedisReply]) -> Reservation? {
        guard let status = fields[0].text.flatMap(ReservationStatus.init(rawValue:)),
              let slot = fields[1].text, let site = fields[2].text, let code = fields[3].text,
              let createdAt = fields[4].integer else { return nil }
        return Reservation(id: id, campaignID: campaign, slotID: slot, siteID: site, status: status,
                           code: code, createdAtMillis: createdAt)
    }
}

extension Result where Failure == Problem {
    var failureProblem: Problem? {
        if case .failure(let problem) = self { return problem }
        return nil
    }
}
