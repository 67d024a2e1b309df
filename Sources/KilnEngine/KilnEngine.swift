// KilnEngine: the first CPU engine, on oneDNN 2.6, behind KilnRuntime's `Backend` protocol.
//
// The folders are the pipeline, in the order a group goes through it:
//
//   Capability/  which nodes the engine runs and how each is lowered: ONE table (CPUCapabilities)
//   IR/          the engine's graph of a group (EngineIR) and the checker run between passes
//   Passes/      identity removal, constant folding, BatchNorm folding, post-op fusion, dead ops
//   Lowering/    oneDNN primitives in the layouts oneDNN prefers; weights packed once
//   Planner/     one arena for every intermediate, reused by liveness
//   Runtime/     EnginePlan (binds arrays, runs the primitives) and EngineReport
//   Cache/       keys (SHA-256, Hash128), the plan file, the disk cache and the process cache
//
// CPUEngine.swift ties them together:
//
//   compile(group) = key -> process cache? -> disk cache? -> IR -> passes -> lower -> plan -> plan
//
// Options arrive typed (EngineOptions), parsed once by the caller; nothing is read from the
// environment here. docs/ENGINE.md explains the choices and gives the measurements.
