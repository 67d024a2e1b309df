import KilnGraph

// gluoncv 0.10.5's CIFAR models (gluoncv/model_zoo/cifarresnet.py, cifarwideresnet.py, cifarresnext.py),
// built block for block in the same order so that every name matches: blocks are created in the same
// scopes (residual blocks have the empty prefix, so their layers count in the stage's scope:
// stage1_conv0, stage1_conv1, ...), children are registered in the order of gluoncv's attribute
// assignments, and ops are emitted in the order of gluoncv's hybrid_forward.

/// A block whose forward runs its registered children one after another (gluoncv's
/// `x = self.features(x); x = self.output(x)`), with structural names such as `features` and `output`.
open class ChainBlock: HybridBlock {
    open override func forward(_ x: Symbol) throws -> Symbol {
        var y = x
        for case let child as HybridBlock in children.map(\.block) { y = try child(y) }
        return y
    }
}

/// `_conv3x3` of gluoncv: 3x3, padding 1, no bias.
private func conv3x3(_ channels: Int, _ stride: Int, _ inChannels: Int) -> Conv2D {
    Conv2D(channels: channels, kernel: 3, strides: stride, padding: 1, useBias: false, inChannels: inChannels)
}

/// `F.Activation(residual + x, act_type='relu')`, named as MXNet names the two unnamed ops.
private func addRelu(_ lhs: Symbol, _ rhs: Symbol) -> Symbol {
    let sum = Symbol.elementwiseAdd(lhs, rhs, name: OpNamer.automatic("_plus"))
    return Symbol.activation(sum, kind: .relu, name: OpNamer.automatic("activation"))
}

/// gluoncv's `CIFARBasicBlockV1`: conv-BN-ReLU-conv-BN plus a projected or identity shortcut, then ReLU.
public final class CIFARBasicBlockV1: HybridBlock {
    private let body: HybridSequential
    private let downsample: HybridSequential?

    /// A block of `channels` outputs; `downsample` adds the 1x1 projection shortcut.
    public init(channels: Int, stride: Int, downsample: Bool, inChannels: Int) {
        // The empty prefix: these layers are made in (and named by) the enclosing stage's scope.
        body = HybridSequential(prefix: "")
        body.add(conv3x3(channels, stride, inChannels), BatchNorm(), Activation(.relu),
                 conv3x3(channels, 1, channels), BatchNorm())
        if downsample {
            let d = HybridSequential(prefix: "")
            d.add(Conv2D(channels: channels, kernel: 1, strides: stride, useBias: false, inChannels: inChannels), BatchNorm())
            self.downsample = d
        } else {
            self.downsample = nil
        }
        super.init(prefix: "", hint: "cifarbasicblockv1")
        registerChild(body, name: "body")
        if let d = self.downsample { registerChild(d, name: "downsample") }
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        let y = try body(x)
        let residual = try downsample.map { try $0(x) } ?? x
        return addRelu(residual, y)
    }
}

/// gluoncv's `CIFARBasicBlockV2` (pre-activation). `downsampleAfterActivation` selects the wide ResNets'
/// variant (cifarwideresnet.py), whose shortcut convolution reads the activated input.
public final class CIFARBasicBlockV2: HybridBlock {
    private let bn1: BatchNorm
    private let conv1: Conv2D
    private let bn2: BatchNorm
    private let conv2: Conv2D
    private let downsample: Conv2D?
    private let dropRate: Double
    private let downsampleAfterActivation: Bool

    /// A block of `channels` outputs; `downsample` adds the 1x1 projection shortcut; `dropRate` > 0 adds Dropout between the convolutions.
    public init(channels: Int, stride: Int, downsample: Bool, inChannels: Int, dropRate: Double = 0,
                downsampleAfterActivation: Bool = false) {
        bn1 = BatchNorm()
        conv1 = conv3x3(channels, stride, inChannels)
        bn2 = BatchNorm()
        conv2 = conv3x3(channels, 1, channels)
        self.downsample = downsample
            ? Conv2D(channels: channels, kernel: 1, strides: stride, useBias: false, inChannels: inChannels) : nil
        self.dropRate = dropRate
        self.downsampleAfterActivation = downsampleAfterActivation
        super.init(prefix: "", hint: "cifarbasicblockv2")
        registerChild(bn1, name: "bn1")
        registerChild(conv1, name: "conv1")
        registerChild(bn2, name: "bn2")
        registerChild(conv2, name: "conv2")
        if let d = self.downsample { registerChild(d, name: "downsample") }
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        var residual = x
        var y = Symbol.activation(try bn1(x), kind: .relu, name: OpNamer.automatic("activation"))
        if downsampleAfterActivation, let downsample { residual = try downsample(y) }
        y = try conv1(y)
        y = Symbol.activation(try bn2(y), kind: .relu, name: OpNamer.automatic("activation"))
        if dropRate > 0 { y = Symbol.dropout(y, p: dropRate, name: OpNamer.automatic("dropout")) }
        y = try conv2(y)
        if !downsampleAfterActivation, let downsample { residual = try downsample(x) }
        return Symbol.elementwiseAdd(y, residual, name: OpNamer.automatic("_plus"))
    }
}

/// gluoncv's ResNeXt `CIFARBlock`: 1x1, grouped 3x3, 1x1 (4x channels) bottleneck with a shortcut.
public final class CIFARResNeXtBlock: HybridBlock {
    private let body: HybridSequential
    private let downsample: HybridSequential?

    /// A block of `4 * channels` outputs with `cardinality` groups of width `floor(channels * bottleneckWidth / 64)`.
    public init(channels: Int, cardinality: Int, bottleneckWidth: Int, stride: Int, downsample: Bool) {
        // gluoncv: D = floor(channels * (bottleneck_width / 64)).
        let d = Int((Double(channels) * (Double(bottleneckWidth) / 64)).rounded(.down))
        let groupWidth = cardinality * d
        body = HybridSequential(prefix: "")
        body.add(Conv2D(channels: groupWidth, kernel: 1, useBias: false), BatchNorm(), Activation(.relu),
                 Conv2D(channels: groupWidth, kernel: 3, strides: stride, padding: 1, groups: cardinality, useBias: false),
                 BatchNorm(), Activation(.relu),
                 Conv2D(channels: channels * 4, kernel: 1, useBias: false), BatchNorm())
        if downsample {
            let ds = HybridSequential(prefix: "")
            ds.add(Conv2D(channels: channels * 4, kernel: 1, strides: stride, useBias: false), BatchNorm())
            self.downsample = ds
        } else {
            self.downsample = nil
        }
        super.init(prefix: "", hint: "cifarblock")
        registerChild(body, name: "body")
        if let ds = self.downsample { registerChild(ds, name: "downsample") }
    }

    public override func forward(_ x: Symbol) throws -> Symbol {
        let y = try body(x)
        let residual = try downsample.map { try $0(x) } ?? x
        return addRelu(residual, y)
    }
}

/// gluoncv's `CIFARResNetV1` / `CIFARResNetV2` / `CIFARWideResNet` / `CIFARResNext`: `features` then `output`.
public final class CIFARNet: ChainBlock {
    /// The architectures of the zoo.
    public enum Architecture: Sendable, Equatable {
        /// ResNet v1 or v2 of depth 6n + 2 (channels 16, 16, 32, 64).
        case resNet(version: Int, depth: Int)
        /// Wide ResNet of depth 6n + 4 and a width factor.
        case wideResNet(depth: Int, widthFactor: Int, dropRate: Double)
        /// ResNeXt of depth 9n + 2.
        case resNeXt(depth: Int, cardinality: Int, bottleneckWidth: Int)
    }

    /// The architecture built.
    public let architecture: Architecture

    /// Builds the network in the current ``NameScope`` (``ModelZoo/get(_:pretrained:root:classes:)``
    /// builds it in a fresh one, giving gluoncv's `cifarresnetv10_` prefix).
    public init(_ architecture: Architecture, classes: Int = 10) throws {
        self.architecture = architecture
        let hint: String
        switch architecture {
        case .resNet(let v, let depth):
            guard v == 1 || v == 2, depth >= 8, (depth - 2) % 6 == 0 else {
                throw GluonError.invalidArgument("A CIFAR ResNet needs version 1 or 2 and a depth 6n+2, not v\(v) depth \(depth).")
            }
            hint = "cifarresnetv\(v)"
        case .wideResNet(let depth, let k, _):
            guard depth >= 10, (depth - 4) % 6 == 0, k > 0 else {
                throw GluonError.invalidArgument("A CIFAR wide ResNet needs a depth 6n+4 and a positive width, not depth \(depth) width \(k).")
            }
            hint = "cifarwideresnet"
        case .resNeXt(let depth, let c, let w):
            guard depth >= 11, (depth - 2) % 9 == 0, c > 0, w > 0 else {
                throw GluonError.invalidArgument("A CIFAR ResNeXt needs a depth 9n+2 and a positive cardinality and width, not depth \(depth).")
            }
            hint = "cifarresnext"
        }
        super.init(prefix: nil, hint: hint)
        nameScope {
            let features = HybridSequential(prefix: "")
            let output: Dense
            switch architecture {
            case .resNet(1, let depth):
                let n = (depth - 2) / 6, channels = [16, 16, 32, 64]
                features.add(Conv2D(channels: channels[0], kernel: 3, strides: 1, padding: 1, useBias: false), BatchNorm())
                for i in 0..<3 {
                    let stage = HybridSequential(prefix: "stage\(i + 1)_")
                    stage.nameScope {
                        stage.add(CIFARBasicBlockV1(channels: channels[i + 1], stride: i == 0 ? 1 : 2,
                                                    downsample: channels[i + 1] != channels[i], inChannels: channels[i]))
                        for _ in 1..<n {
                            stage.add(CIFARBasicBlockV1(channels: channels[i + 1], stride: 1, downsample: false, inChannels: channels[i + 1]))
                        }
                    }
                    features.add(stage)
                }
                features.add(GlobalAvgPool2D())
                output = Dense(units: classes, inUnits: channels[3])
            case .resNet(_, let depth):
                output = Self.preActivationFeatures(features, layers: (depth - 2) / 6, channels: [16, 16, 32, 64],
                                                    wide: false, dropRate: 0, classes: classes)
            case .wideResNet(let depth, let k, let dropRate):
                output = Self.preActivationFeatures(features, layers: (depth - 4) / 6, channels: [16, 16 * k, 32 * k, 64 * k],
                                                    wide: true, dropRate: dropRate, classes: classes)
            case .resNeXt(let depth, let cardinality, let width):
                let n = (depth - 2) / 9
                var channels = 64
                features.add(Conv2D(channels: channels, kernel: 3, strides: 1, padding: 1, useBias: false), BatchNorm(), Activation(.relu))
                for i in 0..<3 {
                    let stage = HybridSequential(prefix: "stage\(i + 1)_")
                    stage.nameScope {
                        for j in 0..<n {
                            stage.add(CIFARResNeXtBlock(channels: channels, cardinality: cardinality, bottleneckWidth: width,
                                                        stride: j == 0 && i > 0 ? 2 : 1, downsample: j == 0))
                        }
                    }
                    features.add(stage)
                    channels *= 2
                }
                features.add(GlobalAvgPool2D())
                output = Dense(units: classes)
            }
            registerChild(features, name: "features")
            registerChild(output, name: "output")
        }
    }

    /// The features of ResNet v2 and the wide ResNets (a BatchNorm without scale and center first, a
    /// ReLU, pooling and Flatten last); returns the output layer.
    private static func preActivationFeatures(_ features: HybridSequential, layers n: Int, channels: [Int], wide: Bool,
                                              dropRate: Double, classes: Int) -> Dense {
        features.add(BatchNorm(center: false, scale: false))
        features.add(Conv2D(channels: channels[0], kernel: 3, strides: 1, padding: 1, useBias: false))
        if wide { features.add(BatchNorm()) }
        var inChannels = channels[0]
        for i in 0..<3 {
            let stage = HybridSequential(prefix: "stage\(i + 1)_")
            let c = channels[i + 1]
            stage.nameScope {
                stage.add(CIFARBasicBlockV2(channels: c, stride: i == 0 ? 1 : 2, downsample: c != inChannels,
                                            inChannels: inChannels, dropRate: dropRate, downsampleAfterActivation: wide))
                for _ in 1..<n {
                    stage.add(CIFARBasicBlockV2(channels: c, stride: 1, downsample: false, inChannels: c,
                                                dropRate: dropRate, downsampleAfterActivation: wide))
                }
            }
            features.add(stage)
            inChannels = c
        }
        features.add(BatchNorm(), Activation(.relu), GlobalAvgPool2D(), Flatten())
        return wide ? Dense(units: classes) : Dense(units: classes, inUnits: inChannels)
    }
}
