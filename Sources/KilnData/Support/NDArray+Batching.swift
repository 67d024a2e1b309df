// Row gathering and stacking: how batches are assembled from a data set's arrays.
//
//     rows of (5, 2):  [a] [b] [c] [d] [e]   gathering [3, 0, 3]  ->  (3, 2): [d] [a] [d]
//     stacking three (2,) arrays [x] [y] [z]                       ->  (3, 2): [x] [y] [z]
import KilnCore

extension NDArray {
    /// The number of examples of an array whose examples lie along axis 0.
    var rowCount: Int { shape.rank == 0 ? 0 : shape[0] }

    /// The shape of one example (the shape less axis 0).
    var rowShape: Shape { Shape(Array(shape.dims.dropFirst())) }

    /// Rows `indices` along axis 0, in that order (indices may repeat).
    ///
    /// - Precondition: every index is in `0..<rowCount`; callers index with positions they made.
    func gatheringRows(_ indices: [Int]) -> NDArray {
        let rowBytes = rowShape.elementCount * dtype.byteSize
        var out = NDArray(zeros: Shape([indices.count] + rowShape.dims), dtype: dtype)
        guard rowBytes > 0 else { return out }
        withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < rowCount, "row \(i) of \(rowCount)")
                    (d + k * rowBytes).copyMemory(from: s + i * rowBytes, byteCount: rowBytes)
                }
            }
        }
        return out
    }

    /// Row `index` along axis 0 as an array of the example's shape.
    func row(_ index: Int) -> NDArray {
        let one = gatheringRows([index])
        // The element count is unchanged, so this reshape cannot fail.
        return (try? one.reshaped(rowShape)) ?? one
    }

    /// Arrays of one shape and dtype stacked along a new axis 0; `what` names them in errors.
    static func stacking(_ items: [NDArray], what: String) throws -> NDArray {
        guard let first = items.first else {
            throw KilnDataError.invalidArgument("Cannot stack an empty list of \(what)")
        }
        for (k, item) in items.enumerated() where item.shape != first.shape || item.dtype != first.dtype {
            throw KilnDataError.invalidArgument(
                "Cannot batch \(what): item \(k) is \(item.dtype) \(item.shape) but item 0 is \(first.dtype) \(first.shape)")
        }
        let itemBytes = first.byteCount
        var out = NDArray(zeros: Shape([items.count] + first.shape.dims), dtype: first.dtype)
        guard itemBytes > 0 else { return out }
        out.withUnsafeMutableBytes { dst in
            guard let d = dst.baseAddress else { return }
            for (k, item) in items.enumerated() {
                item.withUnsafeBytes { src in
                    if let s = src.baseAddress { (d + k * itemBytes).copyMemory(from: s, byteCount: itemBytes) }
                }
            }
        }
        return out
    }
}
