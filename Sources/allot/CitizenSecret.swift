import Foundation
import Glibc

/// The key of the citizen-id HMAC: `ALLOT_CITIZEN_KEY`, or a random key made
/// on first run and kept (mode 0600) in the data directory. Losing it means
/// the holdings of running campaigns no longer match their citizens.
enum CitizenSecret {
    static let bytes = 32

    /// `mayCreate` false (a front node): the key must exist already, the
    /// full nodes' own; a new one would key the same citizen differently
    /// on this node, and let them book twice.
    static func load(environment: [String: String], dataDirectory: String, mayCreate: Bool = true) throws -> [UInt8] {
        if let text = environment["ALLOT_CITIZEN_KEY"], !text.isEmpty {
            let secret = Array(text.utf8)
            guard secret.count >= bytes else {
                throw CitizenSecretError("ALLOT_CITIZEN_KEY must be at least \(bytes) bytes")
            }
            return secret
        }
        let path = dataDirectory + "/citizen.key"
        if let existing = FileManager.default.contents(atPath: path) {
            guard existing.count >= bytes else { throw CitizenSecretError("\(path) is shorter than \(bytes) bytes") }
            return Array(existing)
        }
        guard mayCreate else {
            throw CitizenSecretError("a front node needs the full nodes' citizen key: set ALLOT_CITIZEN_KEY or copy their citizen.key to \(path)")
        }
        var generator = SystemRandomNumberGenerator()
        let secret = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        guard FileManager.default.createFile(atPath: path, contents: Data(secret), attributes: [.posixPermissions: 0o600]) else {
            throw CitizenSecretError("cannot write \(path)")
        }
        return secret
    }
}

struct CitizenSecretError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
