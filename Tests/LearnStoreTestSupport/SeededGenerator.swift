import LearnStoreModel

/// The tests' name for the project's seeded generator.
public typealias SeededGenerator = SplitMix64
