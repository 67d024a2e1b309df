// KilnEngineCore: what every optimizing engine of Kiln shares, with no C library: the cpu engine
// (KilnEngine, oneDNN) and the cuda engine (KilnCUDA) are lowerings of this IR.
//
// The folders are the pipeline, in the order a group goes through it:
//
//   Capability/  the lowering kinds, the shared capability rules (EngineRules) and the table form
//                (EngineCapabilities) each engine declares its ops with
//   IR/          the engine's graph of a group (EngineIR) and the checker run between passes
//   Passes/      identity removal, constant folding, BatchNorm folding, post-op fusion (what may
//                fuse comes from the engine's FusionPolicy), reshape into FC, the fused head, dead ops
//   Planner/     one arena for every intermediate, reused by liveness
//   Cache/       the graph's cache key (SHA-256 over Hash128 digests of the graph and weights)
//
// An engine's compile is then:
//
//   capabilities.build(group) -> EngineIR -> pipeline.run (checked after every pass) -> its lowering
