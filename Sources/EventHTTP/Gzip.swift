import CZlib

/// `Content-Encoding: gzip` for bodies rendered once and sent many times
/// (zlib's deflate, wrapped here once).
public enum Gzip {
    /// The gzip member of `bytes`; nil if zlib fails (then send them as they are).
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var stream = z_stream()
        guard allot_deflate_init_gzip(&stream, level) == Z_OK else { return nil }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, uLong(bytes.count))) + 32)
        let status = bytes.withUnsafeBufferPointer { input in
            output.withUnsafeMutableBufferPointer { out in
                stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                return deflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { return nil }
        output.removeLast(output.count - Int(stream.total_out))
        return output
    }

    /// Whether an `Accept-Encoding` value takes gzip: `gzip` or `x-gzip` or
    /// `*`, with no `q=0` (RFC 9110, 12.5.3). At most 32 codings are read.
    /// Read in place: it is on every poll of a hot listing.
    public static func isAccepted(by acceptEncoding: String) -> Bool {
        var value = acceptEncoding
        return value.withUTF8 { bytes in
            // `gzip` named decides; `*` only speaks for codings not named.
            var named: Bool?, any: Bool?
            var start = 0, items = 0
            while start <= bytes.count, items < 32 {
                let end = bytes[start...].firstIndex(of: UInt8(ascii: ",")) ?? bytes.count
                let item = bytes[start..<end]
                let semicolon = item.firstIndex(of: UInt8(ascii: ";")) ?? item.endIndex
                let coding = trimmed(item[item.startIndex..<semicolon])
                if isToken(coding, "gzip") || isToken(coding, "x-gzip") {
                    named = (named ?? false) || !refuses(item[semicolon...])
                } else if isToken(coding, "*") {
                    any = !refuses(item[semicolon...])
                }
                start = end + 1
                items += 1
            }
            return named ?? any ?? false
        }
    }

    /// Whether a coding's parameters say `q=0`. Parameters are rare: read as text.
    private static func refuses(_ parameters: Slice<UnsafeBufferPointer<UInt8>>) -> Bool {
        for parameter in String(decoding: parameters, as: UTF8.self).split(separator: ";", maxSplits: 4) {
            let pair = String(decoding: trimmed(Array(parameter.utf8)[...]), as: UTF8.self).lowercased()
            if pair.hasPrefix("q="), (Double(pair.dropFirst(2)) ?? 1) == 0 { return true }
        }
        return false
    }

    private static func trimmed<Bytes: BidirectionalCollection<UInt8>>(_ bytes: Bytes) -> Bytes.SubSequence {
        let blank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !blank($0) }), let last = bytes.lastIndex(where: { !blank($0) }) else {
            return bytes[bytes.startIndex..<bytes.startIndex]
        }
        return bytes[first...last]
    }

    /// ASCII, case-insensitively.
    private static func isToken<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ token: StaticString) -> Bool {
        guard bytes.count == token.utf8CodeUnitCount else { return false }
        return token.withUTF8Buffer { expected in
            zip(bytes, expected).allSatisfy { byte, wanted in
                (byte >= 65 && byte <= 90 ? byte + 32 : byte) == wanted
            }
        }
    }
}
