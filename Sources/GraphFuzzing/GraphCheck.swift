import KilnCore
import KilnGraph
import KilnRuntime

/// What the graph fuzz target checks for each ``SymbolRecipe``: the file is read, or refused with a
/// thrown error; a symbol that was read is written and read back unchanged; its shapes and types are
/// inferred, or refused with a thrown error; and, when all its arrays together are small, it is bound
/// on the reference backend and run forward, giving outputs of the inferred shapes.
///
/// A thrown error anywhere is the expected answer to a bad graph. A trap is a bug in Kiln, and so is a
/// ``Finding``: a symbol that does not survive writing, or outputs unlike the inferred ones.
public enum GraphCheck {
    /// How far a recipe got.
    public enum Outcome: Equatable, Sendable {
        /// The reader refused the file.
        case rejected
        /// The file was read; shape or type inference refused it.
        case notInferred
        /// Inferred, but not bound: its arrays hold more than the element limit (or more than Int
        /// counts), which is the memory budget's case rather than a kernel's.
        case tooLarge
        /// Bound or run, and the binding or a kernel refused it with a thrown error.
        case notRun
        /// Run forward on the reference backend.
        case ran
    }

    /// A broken invariant: the fuzz target traps on it, a unit test records it.
    public struct Finding: Error, CustomStringConvertible {
        public let description: String
    }

    /// Arrays holding more elements than this, all together, are not bound: a forward pass on them
    /// would take the reference kernels seconds, and allocating them is the memory budget's concern.
    public static let elementLimit = 1 << 20

    /// Graphs with more nodes than this are read and inferred but not bound, for the same reason.
    public static let bindNodeLimit = 20_000

    /// Runs the checks on `recipe`, and also the reason for the outcome (the error refused with).
    public static func run(_ recipe: SymbolRecipe) throws(Finding) -> (outcome: Outcome, detail: String) {
        let symbol: Symbol
        do {
            symbol = try Symbol(json: recipe.json, source: "fuzz recipe")
        } catch {
            return (.rejected, "\(error)")
        }
        try checkRoundTrip(symbol)

        let shapes: InferredShapes
        do {
            shapes = try symbol.inferShape(recipe.shapes)
            _ = try symbol.inferType()
        } catch {
            return (.notInferred, "\(error)")
        }
        guard let elements = totalElements(shapes), elements <= elementLimit, recipe.nodeCount <= bindNodeLimit else {
            let size = "\(totalElements(shapes).map(String.init) ?? "more than Int.max") elements in \(recipe.nodeCount) nodes"
            // Too large to run, but with a small fixed memory budget (tools/fuzz.sh sets
            // KILN_MEMORY_LIMIT) binding must still end in an executor or an error, never a trap:
            // this is where a shape past the machine's memory used to abort in the allocator.
            if recipe.nodeCount <= bindNodeLimit, let budget = try? MemoryBudget.process, let limit = budget.fixedLimit, limit <= 1 << 29 {
                do {
                    _ = try symbol.bind(shapes: recipe.shapes, backend: OpByOpBackend.reference)
                } catch {
                    return (.tooLarge, "\(size); bind refused: \(error)")
                }
            }
            return (.tooLarge, size)
        }
        let executor: Executor
        do {
            executor = try symbol.bind(shapes: recipe.shapes, backend: OpByOpBackend.reference)
            for (name, shape) in recipe.shapes {
                // Zeros hide kernel arithmetic; a small ramp of values does not.
                guard let bound = executor.argDict[name], bound.dtype == .float32, bound.shape == shape else { continue }
                executor.argDict[name] = NDArray(shape: shape, values: (0..<shape.elementCount).map { Float($0 % 7) - 3 })
            }
            try executor.forward(isTrain: recipe.isTrain)
        } catch {
            return (.notRun, "\(error)")
        }
        let outputs = executor.outputs
        guard outputs.map(\.shape) == shapes.outputs else {
            throw Finding(description: "forward gave outputs of shapes \(outputs.map(\.shape)), but inference gave \(shapes.outputs)")
        }
        return (.ran, "\(outputs.count) outputs")
    }

    /// A symbol that was read is written by `jsonString()` and read back with the same arguments,
    /// auxiliary states, outputs and nodes, and writing that again gives the same text.
    static func checkRoundTrip(_ symbol: Symbol) throws(Finding) {
        let text: String
        let again: Symbol
        do {
            text = try symbol.jsonString()
            again = try Symbol(json: text, source: "re-encoded fuzz recipe")
        } catch {
            throw Finding(description: "a symbol that was read did not survive jsonString() and reading back: \(error)")
        }
        // Each graph once: `listArguments()` and its kind build the graph anew, seconds for 60,000 nodes.
        let before = symbol.graph, after = again.graph
        guard after.argumentNames == before.argumentNames, after.auxiliaryNames == before.auxiliaryNames,
              after.outputNames == before.outputNames, after.nodes.count == before.nodes.count else {
            throw Finding(description: "writing and reading back changed the symbol")
        }
        guard (try? again.jsonString()) == text else {
            throw Finding(description: "writing the re-read symbol gave other text")
        }
    }

    /// Elements of every node output, argument and auxiliary state, nil when the sum overflows Int.
    static func totalElements(_ shapes: InferredShapes) -> Int? {
        totalBytes(shapes.nodeOutputs.joined().map { $0.checkedElementCount })
    }
}
