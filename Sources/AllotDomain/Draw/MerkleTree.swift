import Crypto

/// The Merkle tree of a draw's entries (README, Lottery), as RFC 9162
/// (Certificate Transparency 2.0, section 2.1) defines it: a leaf's hash is
/// SHA-256(0x00 ‖ leaf), a node's SHA-256(0x01 ‖ left ‖ right), and a list of
/// n > 1 leaves splits at the largest power of two below n. Anyone can check
/// that an entry is in the frozen list with its inclusion proof and the
/// published root, without the other entries.
public enum MerkleTree {
    public typealias Hash = [UInt8]

    /// The hash of no leaves: SHA-256 of the empty string.
    public static let emptyRoot: Hash = Array(SHA256.hash(data: [UInt8]()))

    public static func leafHash(_ leaf: [UInt8]) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x00])
        hasher.update(data: leaf)
        return Array(hasher.finalize())
    }

    static func nodeHash(_ left: Hash, _ right: Hash) -> Hash {
        var hasher = SHA256()
        hasher.update(data: [0x01])
        hasher.update(data: left)
        hasher.update(data: right)
        return Array(hasher.finalize())
    }

    /// The root over `leaves`, in their order.
    public static func root(_ leaves: [[UInt8]]) -> Hash {
        guard !leaves.isEmpty else { return emptyRoot }
        return root(ofHashes: leaves.map(leafHash))
    }

    /// Iterative, level by level: a million entries need no deep recursion.
    /// Pairing left to right and carrying an odd last node up unchanged gives
    /// RFC 9162's tree (the split at the largest power of two below n).
    static func root(ofHashes hashes: [Hash]) -> Hash {
        var level = hashes
        while level.count > 1 { level = parents(of: level) }
        return level[0]
    }

    /// The level above: each pair's node, and an odd last node carried up.
    private static func parents(of level: [Hash]) -> [Hash] {
        var next: [Hash] = []
        next.reserveCapacity((level.count + 1) / 2)
        var index = 0
        while index + 1 < level.count {
            next.append(nodeHash(level[index], level[index + 1]))
            index += 2
        }
        if index < level.count { next.append(level[index]) }
        return next
    }

    /// The audit path of leaf `index` among `count` leaves (RFC 9162,
    /// 2.1.3.1), from the leaf's sibling up; `hashes` are the leaf hashes.
    /// Nil for an index that is not a leaf's.
    public static func inclusionProof(index: Int, hashes: [Hash]) -> [Hash]? {
        guard index >= 0, index < hashes.count else { return nil }
        var proof: [Hash] = []
        var level = hashes, position = index
        while level.count > 1 {
            let sibling = position ^ 1
            if sibling < level.count { proof.append(level[sibling]) }
            level = parents(of: level)
            position /= 2
        }
        return proof
    }

    /// Whether `proof` shows leaf `leaf` at `index` among `count` leaves
    /// under `root` (RFC 9162, 2.1.3.2).
    public static func verifyInclusion(leaf: [UInt8], index: Int, count: Int, proof: [Hash], root: Hash) -> Bool {
        guard index >= 0, index < count else { return false }
        var fn = index, sn = count - 1
        var hash = leafHash(leaf)
        for sibling in proof {
            guard sn != 0 else { return false }
            if fn & 1 == 1 || fn == sn {
                hash = nodeHash(sibling, hash)
                if fn & 1 == 0 {
                    while fn & 1 == 0 && fn != 0 {
                        fn >>= 1
                        sn >>= 1
                    }
                }
            } else {
                hash = nodeHash(hash, sibling)
            }
            fn >>= 1
            sn >>= 1
        }
        return sn == 0 && hash == root
    }
}
