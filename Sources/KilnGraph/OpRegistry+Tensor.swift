extension OpRegistry {
    static var tensorOps: [OpDefinition] { [] }
}
