import Foundation
import KilnCore
import KilnData
import TestSupport
import Testing

/// One case of `golden/data/transforms/index.json`: an input and MXNet 1.9.1's output.
struct TransformGoldenCase: Decodable, CustomStringConvertible, Sendable {
    struct Parameters: Decodable, Sendable {
        let width: Int?
        let height: Int?
        let size: Int?
        let mean: [Float]?
        let std: [Float]?
    }
    let name: String
    let kind: String
    let params: Parameters

    var description: String { name }

    static let all: [TransformGoldenCase] = {
        guard let data = try? Data(contentsOf: Fixtures.url("golden/data/transforms/index.json")),
              let cases = try? JSONDecoder().decode([TransformGoldenCase].self, from: data) else { return [] }
        return cases
    }()

    static func of(kind: String) -> [TransformGoldenCase] { all.filter { $0.kind == kind } }

    func arrays() throws -> (input: NDArray, output: NDArray) {
        (try NDArray.load(npyFile: Fixtures.url("golden/data/transforms/\(name)_in.npy")),
         try NDArray.load(npyFile: Fixtures.url("golden/data/transforms/\(name)_out.npy")))
    }
}

@Suite("Transforms")
struct TransformTests {
    @Test("the golden transform cases are there") func goldenPresent() { #expect(TransformGoldenCase.all.count == 20) }

    @Test("ToTensor matches MXNet", arguments: TransformGoldenCase.of(kind: "to_tensor"))
    func toTensor(_ golden: TransformGoldenCase) throws {
        let (x, want) = try golden.arrays()
        let got = try ToTensor()(x)
        #expect(got.shape == want.shape && got.dtype == .float32)
        #expect(try got.maxAbsDifference(want) <= 1e-7)
    }

    @Test("ToTensor moves channels first and divides by 255 (hand-worked)")
    func toTensorByHand() throws {
        // 1x2 image, 2 channels: pixel 0 = (0, 51), pixel 1 = (255, 102).
        let x = NDArray(shape: [1, 2, 2], dtype: .uint8, values: [0, 51, 255, 102])
        let y = try ToTensor()(x)
        #expect(y.shape == [2, 1, 2])
        #expect(y.floats() == [0, 1, 0.2, 0.4])
        #expect(errorMessage { _ = try ToTensor()(NDArray(zeros: [4, 4])) }?.contains("(H, W, C)") == true)
    }

    @Test("Normalize matches MXNet", arguments: TransformGoldenCase.of(kind: "normalize"))
    func normalize(_ golden: TransformGoldenCase) throws {
        let (x, want) = try golden.arrays()
        let got = try Normalize(mean: golden.params.mean ?? [], std: golden.params.std ?? [])(x)
        #expect(try got.maxAbsDifference(want) <= 1e-6)
    }

    @Test("Normalize refuses a wrong number of channels, a zero std and integer input")
    func normalizeErrors() {
        let x = NDArray(zeros: [3, 2, 2])
        #expect(errorMessage { _ = try Normalize(mean: [0, 0], std: [1])(x) }
                == "Normalize's mean has 2 values but the image has 3 channels; give 1 or 3.")
        #expect(errorMessage { _ = try Normalize(mean: [0], std: [1, 0, 1])(x) } == "Normalize's std is 0 for channel 1.")
        #expect(errorMessage { _ = try Normalize()(NDArray(zeros: [3, 2, 2], dtype: .uint8)) }?.contains("float32") == true)
    }

    @Test("Resize matches MXNet (OpenCV INTER_LINEAR): float32 to rounding, uint8 exactly",
          arguments: TransformGoldenCase.of(kind: "resize") + TransformGoldenCase.of(kind: "resize_keep_ratio"))
    func resize(_ golden: TransformGoldenCase) throws {
        let (x, want) = try golden.arrays()
        let transform = golden.kind == "resize"
            ? Resize(width: golden.params.width ?? 0, height: golden.params.height ?? 0)
            : Resize(size: golden.params.size ?? 0, keepRatio: true)
        let got = try transform(x)
        #expect(got.shape == want.shape && got.dtype == want.dtype)
        let diff = try got.maxAbsDifference(want)
        if x.dtype == .float32 {
            #expect(diff <= 1e-5 * 255)
        } else {
            #expect(diff <= 1)
            let a = got.floats(), b = want.floats()
            let exact = zip(a, b).filter { $0 == $1 }.count
            // Only OpenCV's scalar tail of a row may round differently (by 1); the golden cases match exactly.
            #expect(exact == a.count, "\(exact) of \(a.count) exact")
        }
    }

    @Test("Resize of a batch resizes each image; a hand-worked 1x3 -> 1x5 row")
    func resizeByHand() throws {
        let row = NDArray(shape: [1, 3, 1], values: [10, 20, 30])
        // Source columns -0.2 (clamped to 0), 0.4, 1.0, 1.6, 2.2 (clamped to 2).
        #expect(try Resize(width: 5, height: 1)(row).floats() == [10, 14, 20, 26, 30])
        let batch = try NDArray.load(npyFile: Fixtures.url("golden/data/transforms/resize_7x9x3_to_5x4_uint8_in.npy"))
        let two = try NDArray(shape: [2, 7, 9, 3], dtype: .uint8, bytes: batch.withUnsafeBytes { Array($0) + Array($0) })
        let out = try Resize(width: 5, height: 4)(two)
        #expect(out.shape == [2, 4, 5, 3])
        #expect(out.floats() == (try Resize(width: 5, height: 4)(batch)).floats() + (try Resize(width: 5, height: 4)(batch)).floats())
        #expect(errorMessage { _ = try Resize(size: 4)(NDArray(zeros: [2, 2, 1], dtype: .int32)) } == "Resize takes uint8 or float32 images, not int32.")
    }

    @Test("CenterCrop matches MXNet exactly, upsampling a small image as it does",
          arguments: TransformGoldenCase.of(kind: "center_crop"))
    func centerCrop(_ golden: TransformGoldenCase) throws {
        let (x, want) = try golden.arrays()
        let got = try CenterCrop(width: golden.params.width ?? 0, height: golden.params.height ?? 0)(x)
        #expect(got.shape == want.shape)
        #expect(try got.maxAbsDifference(want) == 0)
    }

    @Test("RandomCrop with padding cuts a window of the zero-padded image at a seeded offset")
    func randomCrop() throws {
        // Pixel (y, x) = 10 * (y + 1) + x + 1 of a 4x4 image, one channel.
        let x = image(height: 4, width: 4, channels: 1) { y, x, _ in 10 * (y + 1) + x + 1 }
        let crop = RandomCrop(size: 3, padding: 1)
        var offsets = Set<[Float]>()
        for index in 0..<200 {
            var g = SampleGenerator(seed: 1, epoch: 0, index: index)
            let out = try crop(x, using: &g)
            #expect(out.shape == [3, 3, 1])
            // Recompute the offset the crop drew, from the same generator.
            var again = SampleGenerator(seed: 1, epoch: 0, index: index)
            let x0 = again.nextInt(below: 4) - 1, y0 = again.nextInt(below: 4) - 1
            var want: [Float] = []
            for oy in 0..<3 {
                for ox in 0..<3 {
                    let sy = y0 + oy, sx = x0 + ox
                    want.append((0..<4).contains(sy) && (0..<4).contains(sx) ? Float(10 * (sy + 1) + sx + 1) : 0)
                }
            }
            #expect(out.floats() == want)
            offsets.insert(out.floats())
            var same = SampleGenerator(seed: 1, epoch: 0, index: index)
            #expect(try crop(x, using: &same).floats() == out.floats())
        }
        #expect(offsets.count == 16)   // all 4 x 4 offsets occur
        #expect(errorMessage { _ = try RandomCrop(size: 7, padding: 1)(x) }
                == "RandomCrop cannot cut 7x7 (width x height) from a 4x4 image padded by 1.")
    }

    @Test("RandomFlipLeftRight mirrors about half the time, per sample")
    func flip() throws {
        let x = image(height: 2, width: 3, channels: 2) { y, x, c in y * 100 + x * 10 + c }
        let mirrored = image(height: 2, width: 3, channels: 2) { y, x, c in y * 100 + (2 - x) * 10 + c }
        var flips = 0
        for index in 0..<400 {
            var g = SampleGenerator(seed: 2, epoch: 3, index: index)
            let out = try RandomFlipLeftRight()(x, using: &g)
            if out.floats() == mirrored.floats() { flips += 1 } else { #expect(out.floats() == x.floats()) }
        }
        #expect((160...240).contains(flips))
        let upsideDown = image(height: 2, width: 3, channels: 2) { y, x, c in (1 - y) * 100 + x * 10 + c }
        var seen = Set<[Float]>()
        for index in 0..<20 {
            var g = SampleGenerator(seed: 2, epoch: 0, index: index)
            seen.insert(try RandomFlipTopBottom()(x, using: &g).floats())
        }
        #expect(seen == [x.floats(), upsideDown.floats()])
    }

    @Test("Cast converts the dtype, truncating toward zero")
    func cast() throws {
        let y = try Cast(to: .int32)(NDArray(shape: [3], values: [1.9, -1.9, 7]))
        #expect(y.dtype == .int32 && y.floats() == [1, -1, 7])
        #expect(try Cast()(NDArray(shape: [1], dtype: .uint8, values: [200])).floats() == [200])
    }

    @Test("Compose applies in order and the sample generator makes random steps reproducible")
    func compose() throws {
        let x = image(height: 8, width: 8, channels: 3) { y, x, c in (y * 8 + x) * 3 + c }
        let pipeline = Compose([RandomCrop(size: 6, padding: 2), RandomFlipLeftRight(), ToTensor(),
                                Normalize(mean: 0.5, std: 0.25)])
        var a = SampleGenerator(seed: 9, epoch: 1, index: 4), b = SampleGenerator(seed: 9, epoch: 1, index: 4)
        let first = try pipeline(x, using: &a)
        #expect(first.shape == [3, 6, 6])
        #expect(try pipeline(x, using: &b).floats() == first.floats())
        let others = try (0..<10).map { i -> [Float] in
            var g = SampleGenerator(seed: 9, epoch: 2, index: i)
            return try pipeline(x, using: &g).floats()
        }
        #expect(Set(others).count > 1)
    }
}
