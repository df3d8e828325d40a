import RedisClient

extension RedisAsyncClient {
    /// EVALSHA; on NOSCRIPT (Redis restarted empty, or SCRIPT FLUSH) the
    /// script is loaded and the call retried once.
    func run(_ script: LuaScript, keys: [String], arguments: [String], completion: @escaping Completion) {
        let command = script.command(keys: keys, arguments: arguments)
        send(command) { [weak self] result in
            guard case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT"), let self else {
                completion(result)
                return
            }
            self.send(["SCRIPT", "LOAD", script.source]) { [weak self] _ in
                guard let self else { return completion(.failure(.disconnected)) }
                self.send(command, completion: completion)
            }
        }
    }

    /// Loads every script: run on each (re)connect.
    func loadScripts() {
        for script in Scripts.all { send(["SCRIPT", "LOAD", script.source]) { _ in } }
    }
}

extension RedisSyncClient {
    /// The blocking twin of `RedisAsyncClient.run`.
    func run(_ script: LuaScript, keys: [String], arguments: [String]) throws -> RedisReply {
        let command = script.command(keys: keys, arguments: arguments)
        let reply = try self.command(command)
        guard let message = reply.errorMessage, message.hasPrefix("NOSCRIPT") else { return reply }
        try checked(["SCRIPT", "LOAD", script.source])
        return try self.command(command)
    }
}
