import KilnCore

// Dead op elimination: an op whose output nothing reads (no op, no group output) is removed, from
// the last op backwards so that chains of dead ops go in one sweep.
//
// ```
// before:  x ──> conv0 ──> relu0 ──> (output)      after:  x ──> conv0 ──> relu0 ──> (output)
//          x ──> pool1                  (unread)
// ```

/// Removes ops whose output is never read.
public struct DeadOpElimination: EnginePass {
    public init() {}
    public var name: String { "dead op elimination" }

    public func apply(to ir: inout EngineIR) throws -> Int {
        var read = Set(ir.outputs)
        var keep = [Bool](repeating: true, count: ir.ops.count)
        for i in ir.ops.indices.reversed() {
            if read.contains(ir.ops[i].output) {
                ir.ops[i].reads.forEach { read.insert($0) }
            } else {
                keep[i] = false
            }
        }
        let before = ir.ops.count
        ir.ops = ir.ops.indices.filter { keep[$0] }.map { ir.ops[$0] }
        return before - ir.ops.count
    }
}
