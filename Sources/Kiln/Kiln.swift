// The umbrella module: `import Kiln` gives the whole framework. It is also the one place that wires
// backends together (the engines of later issues register here).
@_exported import KilnCore
@_exported import KilnGraph
@_exported import KilnRuntime
@_exported import KilnPartition
@_exported import KilnTrain
@_exported import KilnData
@_exported import KilnEngineCore
@_exported import KilnEngine
@_exported import KilnGluon
@_exported import KilnCUDA
@_exported import KilnConformance
