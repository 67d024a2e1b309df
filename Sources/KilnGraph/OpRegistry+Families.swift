extension OpRegistry {
    /// The op families, each defined in its own file.
    static var builtinFamilies: [[OpDefinition]] {
        [neuralNetworkOps, elementwiseOps, tensorOps, engineOps]
    }
}
