import Dispatch
import Synchronization
import Testing

@testable import FuncdCore

@Suite("Random bits for ids: one shared state, never the same bits twice")
struct RandomBitsTests {
    @Test("threads drawing at once each get bits no other draw got")
    func concurrentDrawsAreDistinct() {
        let bits = RandomBits()
        let draws = 20_000
        let seen = Mutex<[UInt64]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            var mine: [UInt64] = []
            mine.reserveCapacity(draws * 4)
            for index in 0..<draws {
                if index % 2 == 0 {
                    let (a, b, c) = bits.next192()
                    mine += [a, b, c]
                } else {
                    mine.append(bits.next())
                }
            }
            seen.withLock { $0 += mine }
        }
        let all = seen.withLock { $0 }
        #expect(all.count == 4 * (draws / 2) * 4)
        #expect(Set(all).count == all.count)
        #expect(!all.contains(0))
    }
}
