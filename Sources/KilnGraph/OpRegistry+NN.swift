extension OpRegistry {
    static var neuralNetworkOps: [OpDefinition] { [] }
}
