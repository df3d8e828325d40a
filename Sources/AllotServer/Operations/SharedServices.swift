import AllotDomain
import EventHTTP
import Logging

/// What every loop and worker shares: read-only configuration, the citizen
/// keyer, the logger, tokens, metrics, and the health flags other threads set.
final class SharedServices: Sendable {
    let config: ServerConfig
    let keyer: CitizenKeyer
    /// Masks the route in reservation ids (RouteCipher).
    let routes: RouteCipher
    let logger: Logger
    let tokens: TokenDirectory
    let authFailures: AuthFailureLimiter
    /// The dashboard sign-in form's own (an operator mistyping in a browser
    /// does not slow the API's clients behind the same address, nor they it).
    let signInFailures: AuthFailureLimiter
    let metrics: ServerMetrics
    /// Set by the persister after each successful write or probe.
    let health: SharedHealth
    let admin: AdminWorker
    /// Every loop's read snapshot, for refreshes after operators' changes.
    let catalogs = CatalogDirectory()
    /// The HTTP layer's limits, from the configuration.
    let httpLimits: HTTPLimits
    /// The dashboard's figures of the campaigns operators watch.
    let dashboardSeries = DashboardSeries()

    init(config: ServerConfig, logger: Logger, admin: AdminWorker, tokens: TokenDirectory, metrics: ServerMetrics,
         health: SharedHealth) {
        self.config = config
        self.logger = logger
        self.admin = admin
        self.tokens = tokens
        self.metrics = metrics
        self.health = health
        var limits = HTTPLimits()
        limits.bodyBytesMax = max(config.adminBodyBytesMax, config.citizenBodyBytesMax)
        limits.requestDeadlineSeconds = config.requestDeadlineSeconds
        httpLimits = limits
        keyer = CitizenKeyer(secret: config.citizenSecret)
        routes = RouteCipher(secret: config.citizenSecret)
        authFailures = AuthFailureLimiter(policy: config.authFailurePolicy)
        signInFailures = AuthFailureLimiter(policy: config.authFailurePolicy)
    }
}

extension SharedServices {
    /// The client's address: the peer, or what trusted proxies say it is.
    func clientAddress(_ exchange: HTTPExchange) -> String {
        let peer = exchange.peerAddress
        guard !config.trustedProxies.isEmpty else { return peer }
        return ClientAddress.resolve(peer: peer, forwardedFor: exchange.header("X-Forwarded-For"), trusted: config.trustedProxies)
    }
}
