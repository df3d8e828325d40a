/// Identifiers chosen by operators (campaign, site, slot):
/// `^[a-z0-9][a-z0-9_-]{0,63}$` (API.md). Checked by hand: this runs on every
/// request path and must not allocate a regex engine.
public enum OperatorID {
    public static let bytesMax = 64

    public static func isValid(_ text: Substring) -> Bool { isValid(text.utf8) }

    public static func isValid(_ text: String) -> Bool { isValid(Substring(text)) }

    public static func isValid<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> Bool {
        guard !bytes.isEmpty, bytes.count <= bytesMax else { return false }
        var first = true
        for byte in bytes {
            let isAlnum = (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
            if first {
                guard isAlnum else { return false }
                first = false
            } else {
                guard isAlnum || byte == 0x5F || byte == 0x2D else { return false }
            }
        }
        return true
    }
}
