import KilnCore

/// An array in a GPU's memory: made from a host ``NDArray`` and read back into one.
///
/// ```
/// let x = try DeviceArray(batch, device: 0)   // host -> GPU
/// let back = try x.toHost()                    // GPU -> host; equal to batch
/// ```
public struct DeviceArray: @unchecked Sendable {
    public let shape: Shape
    public let dtype: DType
    /// The GPU's ordinal.
    public let device: Int
    let buffer: DeviceBuffer

    /// Copies a host array to GPU `device`.
    public init(_ host: NDArray, device: Int = 0) throws {
        let d = try CUDA.shared.device(device)
        try d.makeCurrent()
        buffer = try d.upload(host)
        shape = host.shape
        dtype = host.dtype
        self.device = device
    }

    /// The array copied back to the host (waits for the GPU's queued work).
    public func toHost() throws -> NDArray {
        let d = try CUDA.shared.device(device)
        try d.makeCurrent()
        return try d.download(buffer.pointer, shape: shape, dtype: dtype)
    }

    /// Bytes held on the device (rounded as the caching allocator rounds).
    public var deviceBytes: Int { buffer.byteCount }
}
