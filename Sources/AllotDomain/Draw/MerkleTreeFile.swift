import Crypto

/// A draw's Merkle tree kept whole on disk (`tree.bin` beside its files),
/// so an entrant's inclusion proof is a read of one hash per level (about
/// 20 for a million entries), not the tree built again. The layout:
/// `allot merkle v1\n` (16 bytes), the leaf count (8 bytes, big-endian),
/// then each level's hashes, the leaves' first, 32 bytes each. A level is
/// its pairs' nodes with an odd last node carried up (MerkleTree: the same
/// tree as RFC 9162's), so the last level is the root alone.
public enum MerkleTreeFile {
    static let magic = Array("allot merkle v1\n".utf8)
    static let headerBytes = 24
    static let hashBytes = 32

    /// The file for `leaves`, in their order. One buffer: no array per node.
    public static func make(leaves: [[UInt8]]) -> [UInt8] {
        let counts = levelCounts(leaves.count)
        var file = [UInt8](repeating: 0, count: headerBytes + counts.reduce(0, +) * hashBytes)
        file.replaceSubrange(0..<magic.count, with: magic)
        for shift in 0..<8 { file[16 + shift] = UInt8(truncatingIfNeeded: UInt64(leaves.count) >> (56 - 8 * shift)) }
        file.withUnsafeMutableBytes { bytes in
            for (index, leaf) in leaves.enumerated() {
                store(MerkleTree.leafHash(leaf), at: headerBytes + index * hashBytes, in: bytes)
            }
            var below = headerBytes
            for level in 1..<max(1, counts.count) {
                let above = below + counts[level - 1] * hashBytes
                for index in 0..<counts[level] {
                    let left = below + 2 * index * hashBytes
                    if 2 * index + 1 < counts[level - 1] {
                        var hasher = SHA256()
                        hasher.update(data: [0x01])
                        hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: bytes[left..<(left + 2 * hashBytes)]))
                        store(Array(hasher.finalize()), at: above + index * hashBytes, in: bytes)
                    } else {
                        // A node carried up: the same hash one level higher.
                        bytes.baseAddress!.advanced(by: above + index * hashBytes)
                            .copyMemory(from: bytes.baseAddress!.advanced(by: left), byteCount: hashBytes)
                    }
                }
                below = above
            }
        }
        return file
    }

    /// The root: the last level's one hash (the empty tree's for no leaves).
    public static func root(_ file: [UInt8]) -> MerkleTree.Hash {
        guard let count = leafCount(header: Array(file.prefix(headerBytes))), count > 0 else { return MerkleTree.emptyRoot }
        return Array(file.suffix(hashBytes))
    }

    /// The leaf count a file's first `headerBytes` say; nil if not one.
    public static func leafCount(header: [UInt8]) -> Int? {
        guard header.count == headerBytes, Array(header.prefix(magic.count)) == magic else { return nil }
        let count = header[16...].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return count <= UInt64(Int32.max) ? Int(count) : nil
    }

    /// The inclusion proof of leaf `index` among `count` (RFC 9162,
    /// 2.1.3.1, as MerkleTree.inclusionProof gives it), from the leaf's
    /// sibling up. `read(offset, length)` reads the file (a pread); nil if
    /// `index` is not a leaf's or a read comes back short.
    public static func proof(index: Int, count: Int, read: (Int, Int) throws -> [UInt8]) rethrows -> [MerkleTree.Hash]? {
        guard index >= 0, index < count else { return nil }
        var proof: [MerkleTree.Hash] = []
        var offset = headerBytes, position = index
        for levelCount in levelCounts(count) where levelCount > 1 {
            let sibling = position ^ 1
            if sibling < levelCount {
                let hash = try read(offset + sibling * hashBytes, hashBytes)
                guard hash.count == hashBytes else { return nil }
                proof.append(hash)
            }
            offset += levelCount * hashBytes
            position /= 2
        }
        return proof
    }

    /// How many hashes each level has, the leaves' first, down to one.
    static func levelCounts(_ leaves: Int) -> [Int] {
        guard leaves > 0 else { return [] }
        var counts = [leaves]
        while counts.last! > 1 { counts.append((counts.last! + 1) / 2) }
        return counts
    }

    private static func store(_ hash: [UInt8], at offset: Int, in bytes: UnsafeMutableRawBufferPointer) {
        hash.withUnsafeBytes { bytes.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: hashBytes) }
    }
}
