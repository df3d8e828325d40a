import AllotDomain
import Crypto
import Logging

/// What every loop and worker shares: read-only configuration, the citizen
/// keyer, the logger, and the health flags other threads set.
final class SharedServices: Sendable {
    let config: ServerConfig
    let keyer: CitizenKeyer
    let logger: Logger
    let adminTokenDigest: [UInt8]?
    /// Set by the persister after each successful write or probe.
    let health: SharedHealth
    let admin: AdminWorker

    init(config: ServerConfig, logger: Logger, admin: AdminWorker, health: SharedHealth) {
        self.config = config
        self.logger = logger
        self.admin = admin
        self.health = health
        keyer = CitizenKeyer(secret: config.citizenSecret)
        adminTokenDigest = config.adminToken.map { Array(SHA256.hash(data: Array($0.utf8))) }
    }

    /// Constant-time comparison of token digests.
    func isAdminToken(_ token: Substring) -> Bool {
        guard let expected = adminTokenDigest else { return false }
        let digest = Array(SHA256.hash(data: Array(token.utf8)))
        var difference: UInt8 = 0
        for (a, b) in zip(digest, expected) { difference |= a ^ b }
        return difference == 0
    }
}
