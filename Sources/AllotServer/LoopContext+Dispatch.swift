import AllotDomain
import EventHTTP

/// Every request enters here, on its loop: route, authorise, check the body
/// size, then hand it to its handler.
extension LoopContext {
    func handle(_ exchange: HTTPExchange) {
        let uri = exchange.uri
        let path: Substring
        let query: Substring?
        if let mark = uri.firstIndex(of: "?") {
            path = uri[..<mark]
            query = uri[uri.index(after: mark)...]
        } else {
            path = Substring(uri)
            query = nil
        }
        let method = HTTPMethod(rawValue: exchange.method) ?? .other
        switch Router.route(method: method, path: path) {
        case .failure(let problem):
            exchange.send(.problem(problem))
        case .success(let route):
            if route.needsToken, let problem = authorise(exchange) { return exchange.send(.problem(problem)) }
            dispatch(route, query: query, exchange: exchange)
        }
    }

    /// nil when the request carries the admin token.
    private func authorise(_ exchange: HTTPExchange) -> Problem? {
        guard let header = exchange.header("Authorization"), header.hasPrefix("Bearer "),
              shared.isAdminToken(header.dropFirst(7)) else { return .unauthorized }
        return nil
    }

    private func dispatch(_ route: Route, query: Substring?, exchange: HTTPExchange) {
        switch route {
        case .healthz: exchange.send(.json(200, Array("{\"status\":\"ok\"}".utf8)))
        case .readyz: exchange.send(readiness())
        case .metrics: exchange.send(.text(200, metricsText()))
        case .listCampaigns: exchange.send(listCampaigns())
        case .getCampaign(let id): exchange.send(getCampaign(id))
        case .listSites(let id): exchange.send(listSites(id))
        case .listSlots(let id): exchange.send(listSlots(id, query: query))
        case .reserve(let id): reserve(campaignID: id, exchange: exchange)
        case .getReservation(let id): getReservation(id, exchange: exchange)
        case .cancelReservation(let id): transition(id, to: .cancelled, exchange: exchange)
        case .redeemReservation(let id): transition(id, to: .redeemed, exchange: exchange)
        case .exportReservations(let id):
            CSVExport.start(campaign: id, databasePath: config.databasePath, exchange: LoopBound(exchange, loop: loop),
                            logger: shared.logger)
        default: dispatchAdmin(route, exchange: exchange)
        }
    }

    private func readiness() -> Answer {
        let sqliteOK = shared.health.sqliteWritable.load(ordering: .relaxed)
        guard redis.isConnected, sqliteOK else {
            return .problem(.unavailable(redis.isConnected ? "SQLite is not writable" : "Redis is unreachable"))
        }
        return .json(200, Array("{\"status\":\"ready\"}".utf8))
    }

    private func metricsText() -> String {
        """
        # HELP allot_event_loops Event loops serving HTTP.
        # TYPE allot_event_loops gauge
        allot_event_loops \(config.threads)
        # HELP allot_redis_connected Whether this loop's Redis connection is up.
        # TYPE allot_redis_connected gauge
        allot_redis_connected{loop="\(loop.index)"} \(redis.isConnected ? 1 : 0)

        """
    }
}
