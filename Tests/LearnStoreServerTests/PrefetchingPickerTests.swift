import LearnStoreWorkload
import LearnStoreModel
import Testing

@testable import LearnStoreTools

@Suite struct PrefetchingPickerTests {
    /// The picker reads ahead, but what it returns must be exactly the plain draw sequence: the
    /// n-th pick is `elements[n-th draw % count]`, so a seed still names one workload.
    @Test(arguments: [1, 2, 7, 8, 9, 1000])
    func picksFollowTheDrawSequenceInOrder(count: Int) {
        let elements = (0..<count).map { $0 * 3 }
        var pickerRandom = SplitMix64(seed: 42)
        var picker = PrefetchingPicker(elements, using: &pickerRandom)
        var plainRandom = SplitMix64(seed: 42)
        let picked = (0..<100).map { _ in picker.next(using: &pickerRandom) }
        let plain = (0..<100).map { _ in elements[Int(plainRandom.next() % UInt64(count))] }
        #expect(picked == plain)
    }

    @Test func everyElementIsReachable() {
        var random = SplitMix64(seed: 7)
        var picker = PrefetchingPicker(Array(0..<16), using: &random)
        var seen = Set<Int>()
        for _ in 0..<2000 { seen.insert(picker.next(using: &random)) }
        #expect(seen == Set(0..<16))
    }
}
