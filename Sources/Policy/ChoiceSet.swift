// A set of ask choices as bits, so that collecting targets over thousands of rules is word
// operations instead of string hashing.

/// A fixed-size bit set over the positions of a `PolicySystem`'s choice list.
struct ChoiceSet: Sendable, Equatable {
    private(set) var words: [UInt64]

    init(capacity: Int) {
        words = [UInt64](repeating: 0, count: (capacity + 63) / 64)
    }

    var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    func contains(_ position: Int) -> Bool {
        words[position >> 6] & (1 << UInt64(position & 63)) != 0
    }

    mutating func insert(_ position: Int) {
        words[position >> 6] |= 1 << UInt64(position & 63)
    }

    mutating func remove(_ position: Int) {
        words[position >> 6] &= ~(1 << UInt64(position & 63))
    }

    mutating func formUnion(_ other: ChoiceSet) {
        for index in words.indices { words[index] |= other.words[index] }
    }

    mutating func subtract(_ other: ChoiceSet) {
        for index in words.indices { words[index] &= ~other.words[index] }
    }

    mutating func formIntersection(_ other: ChoiceSet) {
        for index in words.indices { words[index] &= other.words[index] }
    }

    /// Positions in increasing order.
    func forEach(_ body: (Int) -> Void) {
        for (wordIndex, word) in words.enumerated() {
            var remaining = word
            while remaining != 0 {
                let bit = remaining.trailingZeroBitCount
                body(wordIndex << 6 | bit)
                remaining &= remaining - 1
            }
        }
    }
}
