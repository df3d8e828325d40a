import AllotDomain
import EventHTTP
import RedisClient

/// `GET`/`DELETE /v1/reservations/{rid}` and `POST …/redeem`. The id names no
/// campaign, so the record is looked for under each campaign's tag: one
/// pipelined GET per campaign (a handful), which keeps every script on one
/// cluster slot.
extension LoopContext {
    func getReservation(_ id: ReservationID, exchange: HTTPExchange) {
        let bound = LoopBound(exchange, loop: loop)
        locate(id) { found in
            switch found {
            case .failure(let problem): bound.wrapped.send(.problem(problem))
            case .success(let (campaign, record)):
                bound.wrapped.send(.json(200, record.reservation(id: id, campaign: campaign).json))
            }
        }
    }

    /// Cancel (citizen) or redeem (staff): confirmed → `target`.
    /// Cancel (by the citizen) or redeem (by staff); `actor` goes with the
    /// event into the stream and from there into the audit trail.
    func transition(_ id: ReservationID, to target: ReservationStatus, actor: String, exchange: HTTPExchange) {
        precondition(target != .confirmed)
        let bound = LoopBound(exchange, loop: loop)
        locate(id) { [self] found in
            guard case .success(let (campaign, _)) = found else {
                return bound.wrapped.send(.problem(found.failureProblem ?? .notFound("no such reservation")))
            }
            let keys = CampaignKeys(campaign)
            redis.run(Scripts.transition, keys: [keys.records, keys.remaining, keys.holdings, keys.stats, keys.stream],
                      arguments: [id.text, target.rawValue, actor, String(config.streamEntriesMax)]) { [self] result in
                bound.wrapped.send(transitionAnswer(result, id: id, campaign: campaign, target: target))
            }
        }
    }

    private func transitionAnswer(_ result: Result<RedisReply, RedisFailure>, id: ReservationID,
                                  campaign: String, target: ReservationStatus) -> Answer {
        guard case .success(let reply) = result else {
            return .problem(.unavailable("the reservation store is unreachable; nothing was changed"))
        }
        let outcome: TransitionOutcome
        do { outcome = try TransitionOutcome(reply) } catch {
            shared.logger.error("transition script failed", metadata: ["campaign": "\(campaign)", "error": "\(error)"])
            return .problem(.unavailable("the reservation store failed; nothing was changed"))
        }
        switch outcome {
        case .changed(let record): return .json(200, record.reservation(id: id, campaign: campaign).json)
        case .notFound: return .problem(.notFound("no such reservation"))
        case .refused: return .problem(target == .cancelled ? .notCancellable : .notRedeemable)
        case .backlogFull:
            return .problem(.unavailable("changes are not being recorded fast enough; nothing was changed", retryAfterSeconds: 5))
        }
    }

    /// Finds the campaign holding reservation `id`, with its record.
    private func locate(_ id: ReservationID, completion: @escaping (Result<(String, ReservationRecord), Problem>) -> Void) {
        guard let catalog = freshCatalog else { return completion(.failure(.unavailable("reservations are not available"))) }
        let campaigns = catalog.campaigns.keys.sorted()
        guard !campaigns.isEmpty else { return completion(.failure(.notFound("no such reservation"))) }
        var outstanding = campaigns.count
        var found: (String, ReservationRecord)?
        var unavailable = false
        for campaign in campaigns {
            redis.send(["HGET", CampaignKeys(campaign).records, id.text]) { result in
                switch result {
                case .success(let reply):
                    if let record = reply.text.flatMap(ReservationRecord.init) { found = (campaign, record) }
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
}

extension Result where Failure == Problem {
    var failureProblem: Problem? {
        if case .failure(let problem) = self { return problem }
        return nil
    }
}
