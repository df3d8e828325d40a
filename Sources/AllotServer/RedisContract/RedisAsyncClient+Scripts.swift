import RedisClient

extension RedisAsyncClient {
    /// FCALL; when the function is missing (Redis restarted without its
    /// data, or FUNCTION FLUSH) the library is loaded and the call made once
    /// more.
    func run(_ function: StoredFunction, keys: [String], arguments: [String], completion: @escaping Completion) {
        var command = function.command(keys: keys.count, arguments: arguments.count)
        for key in keys { command.append(key) }
        for argument in arguments { command.append(argument) }
        run(command, completion: completion)
    }

    /// `run`, for an FCALL already in the wire format
    /// (`StoredFunction.command(keys:arguments:)`, keys and arguments appended).
    func run(_ command: RedisCommand, completion: @escaping Completion) {
        send(command) { [weak self] result in
            guard case .success(.error(let message)) = result, Scripts.isMissingFunction(message), let self else {
                completion(result)
                return
            }
            self.send(Scripts.loadCommand) { [weak self] _ in
                guard let self else { return completion(.failure(.disconnected)) }
                self.send(command, completion: completion)
            }
        }
    }

    /// `run`, with the reply lent to the completion (the reservation path's).
    func run(_ command: RedisCommand, borrowing completion: @escaping BorrowingCompletion) {
        send(command, borrowing: { [weak self] result in
            guard case .success(let reply) = result, let message = reply.errorMessage, Scripts.isMissingFunction(message),
                  let self else {
                completion(result)
                return
            }
            self.send(Scripts.loadCommand) { [weak self] _ in
                guard let self else { return completion(.failure(.disconnected)) }
                self.send(command, borrowing: completion)
            }
        })
    }

    /// Loads the library: run on each (re)connect.
    func loadScripts() {
        send(Scripts.loadCommand) { _ in }
    }
}

extension RedisSyncClient {
    /// The blocking twin of `RedisAsyncClient.run`.
    func run(_ function: StoredFunction, keys: [String], arguments: [String]) throws -> RedisReply {
        let command = function.command(keys: keys, arguments: arguments)
        let reply = try self.command(command)
        guard let message = reply.errorMessage, Scripts.isMissingFunction(message) else { return reply }
        let loaded = try self.command(Scripts.loadCommand)
        guard Scripts.isLoaded(loaded) else { throw RedisError(loaded.errorMessage ?? "FUNCTION LOAD failed") }
        return try self.command(command)
    }
}
