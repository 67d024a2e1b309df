extension OpRegistry {
    static var elementwiseOps: [OpDefinition] { [] }
}
