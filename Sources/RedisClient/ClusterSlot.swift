/// Which of Redis Cluster's 16 384 hash slots a key lives in (the cluster
/// specification, "Key distribution model"): CRC16 (XMODEM) of the key, or
/// of its hash tag, modulo 16 384. Pure.
public enum ClusterSlot {
    public static let count = 16_384

    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(UnsafeRawBufferPointer($0)) }
    }

    public static func of(_ key: UnsafeRawBufferPointer) -> Int {
        let hashed = hashTag(of: key)
        return Int(crc16(UnsafeRawBufferPointer(rebasing: key[hashed]))) & (count - 1)
    }

    /// What of the key is hashed: the bytes between its first `{` and the
    /// first `}` after it, if there is at least one; else the whole key.
    public static func hashTag(of key: UnsafeRawBufferPointer) -> Range<Int> {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
              close > open + 1 else { return 0..<key.count }
        return (open + 1)..<close
    }

    /// CRC16-CCITT as XMODEM computes it (polynomial 0x1021, initial 0), by
    /// table: "123456789" gives 0x31C3.
    public static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
