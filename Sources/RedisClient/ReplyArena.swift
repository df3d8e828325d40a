import CHiredis
import Glibc

/// Where hiredis builds one connection's replies: a bump allocator in
/// chunks, given to its reader as the reply object functions. hiredis's own
/// functions make two or three heap blocks per element (a stream read of a
/// few hundred entries: thousands of mallocs and frees, a fifth of the
/// persister's time); here an element costs a pointer bump. The reply
/// objects are hiredis's own `redisReply`, so `RedisReplyView` reads them as
/// before. When the last reply still held is freed, the arena is empty
/// again and keeps one chunk for the next. While replies are freed in turn
/// (every caller here frees each before the next is read, or a pipeline's
/// all together) it holds about twice what they held, with its doubling
/// chunks; one reply kept while others come and go would keep every chunk
/// made after it.
final class ReplyArena {
    private struct Chunk {
        let base: UnsafeMutableRawPointer
        let size: Int
    }

    static let firstChunkBytes = 16 * 1_024
    /// A chunk past this size is not kept once the arena is empty.
    static let keptChunkBytesMax = 1_024 * 1_024

    private var chunks: [Chunk] = []
    /// Bytes used in the last chunk.
    private var used = 0
    /// Root replies made and not yet freed.
    private var liveReplies = 0

    deinit {
        for chunk in chunks { free(chunk.base) }
    }

    /// Bytes of the chunks held (for tests of its bound).
    var bytesHeld: Int { chunks.reduce(0) { $0 + $1.size } }
    var isEmpty: Bool { liveReplies == 0 }

    /// Makes `context`'s reader build its replies here. The arena must
    /// outlive the context (its owner frees the context first).
    func adopt(_ reader: UnsafeMutablePointer<redisReader>) {
        reader.pointee.fn = replyArenaFunctions
        reader.pointee.privdata = Unmanaged.passUnretained(self).toOpaque()
    }

    /// `count` bytes, aligned to 8, not zeroed; nil when memory is out.
    fileprivate func allocate(_ count: Int) -> UnsafeMutableRawPointer? {
        let size = (count + 7) & ~7
        if let last = chunks.last, used + size <= last.size {
            let pointer = last.base + used
            used += size
            return pointer
        }
        let chunkSize = max(size, Self.firstChunkBytes, 2 * (chunks.last?.size ?? 0))
        guard let base = malloc(chunkSize) else { return nil }
        chunks.append(Chunk(base: base, size: chunkSize))
        used = size
        return base
    }

    fileprivate func rootMade() { liveReplies += 1 }

    fileprivate func rootFreed() {
        liveReplies -= 1
        guard liveReplies == 0 else { return }
        used = 0
        // Empty: keep the largest chunk (the last) if it is not too large.
        // One kept chunk, the usual case, is kept as it is (no new array
        // per reply).
        let keep = chunks.last.flatMap { $0.size <= Self.keptChunkBytesMax ? $0 : nil }
        guard chunks.count > 1 || keep == nil else { return }
        for chunk in chunks where chunk.base != keep?.base { free(chunk.base) }
        chunks.removeAll(keepingCapacity: true)
        if let keep { chunks.append(keep) }
    }

    /// A root reply carries its arena in the 8 bytes before it: hiredis's
    /// `freeObject` gets the reply alone.
    fileprivate static let rootHeaderBytes = 8

    fileprivate static func of(_ task: UnsafePointer<redisReadTask>?) -> ReplyArena {
        Unmanaged<ReplyArena>.fromOpaque(task!.pointee.privdata!).takeUnretainedValue()
    }
}

/// Frees a reply built in a ReplyArena (what `freeReplyObject` is to
/// hiredis's own replies); only a root reply is ever freed.
func freeArenaReply(_ reply: UnsafeMutableRawPointer?) {
    guard let reply else { return }
    let header = (reply - ReplyArena.rootHeaderBytes).load(as: UnsafeMutableRawPointer.self)
    Unmanaged<ReplyArena>.fromOpaque(header).takeUnretainedValue().rootFreed()
}

/// One reply object of `type` for `task`, linked into its parent array (as
/// hiredis's own functions do), with `extra` more bytes after it.
private func makeReply(_ task: UnsafePointer<redisReadTask>?, type: Int32, extra: Int = 0)
    -> (UnsafeMutablePointer<redisReply>, UnsafeMutableRawPointer?)? {
    let arena = ReplyArena.of(task)
    let isRoot = task!.pointee.parent == nil
    let header = isRoot ? ReplyArena.rootHeaderBytes : 0
    let replyBytes = (MemoryLayout<redisReply>.size + 7) & ~7
    guard let block = arena.allocate(header + replyBytes + extra) else { return nil }
    // The reply's fields start at zero, as hiredis's own (calloc).
    (block + header).initializeMemory(as: UInt8.self, repeating: 0, count: replyBytes)
    if isRoot {
        block.storeBytes(of: Unmanaged.passUnretained(arena).toOpaque(), as: UnsafeMutableRawPointer.self)
        arena.rootMade()
    }
    let reply = (block + header).bindMemory(to: redisReply.self, capacity: 1)
    reply.pointee.type = type
    if let parent = task!.pointee.parent {
        let array = parent.pointee.obj.assumingMemoryBound(to: redisReply.self)
        array.pointee.element[Int(task!.pointee.idx)] = reply
    }
    return (reply, extra > 0 ? block + header + replyBytes : nil)
}

/// hiredis calls these while it reads (C function pointers, no context but
/// the task's `privdata`, which holds the arena). Written once, then only
/// read by hiredis.
nonisolated(unsafe) private let replyArenaFunctions: UnsafeMutablePointer<redisReplyObjectFunctions> = {
    let functions = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
    functions.initialize(to: redisReplyObjectFunctions(
        createString: { task, text, length in
            guard let (reply, bytes) = makeReply(task, type: task!.pointee.type, extra: length + 1), let bytes else { return nil }
            if length > 0 { bytes.copyMemory(from: text!, byteCount: length) }
            bytes.storeBytes(of: 0, toByteOffset: length, as: UInt8.self)  // NUL-terminated, as hiredis's
            reply.pointee.str = bytes.assumingMemoryBound(to: CChar.self)
            reply.pointee.len = length
            return UnsafeMutableRawPointer(reply)
        },
        createArray: { task, count in
            let pointers = max(0, Int(count)) * MemoryLayout<UnsafeMutablePointer<redisReply>?>.stride
            guard let (reply, elements) = makeReply(task, type: REDIS_REPLY_ARRAY, extra: pointers) else { return nil }
            elements?.initializeMemory(as: UInt8.self, repeating: 0, count: pointers)
            reply.pointee.elements = max(0, Int(count))
            reply.pointee.element = elements?.bindMemory(to: UnsafeMutablePointer<redisReply>?.self, capacity: Int(count))
            return UnsafeMutableRawPointer(reply)
        },
        createInteger: { task, value in
            guard let (reply, _) = makeReply(task, type: REDIS_REPLY_INTEGER) else { return nil }
            reply.pointee.integer = value
            return UnsafeMutableRawPointer(reply)
        },
        createNil: { task in
            guard let (reply, _) = makeReply(task, type: REDIS_REPLY_NIL) else { return nil }
            return UnsafeMutableRawPointer(reply)
        },
        freeObject: { reply in freeArenaReply(reply) }))
    return functions
}()
