import Foundation

/// gluoncv 0.10.5's CIFAR-10 models by name, with gluoncv's parameter names, so that a gluoncv
/// `save_parameters` file loads unchanged.
public enum ModelZoo {
    /// The architecture of each model name.
    static let architectures: [(String, CIFARNet.Architecture)] = [
        ("cifar_resnet20_v1", .resNet(version: 1, depth: 20)),
        ("cifar_resnet56_v1", .resNet(version: 1, depth: 56)),
        ("cifar_resnet110_v1", .resNet(version: 1, depth: 110)),
        ("cifar_resnet20_v2", .resNet(version: 2, depth: 20)),
        ("cifar_resnet56_v2", .resNet(version: 2, depth: 56)),
        ("cifar_resnet110_v2", .resNet(version: 2, depth: 110)),
        ("cifar_wideresnet16_10", .wideResNet(depth: 16, widthFactor: 10, dropRate: 0)),
        ("cifar_wideresnet28_10", .wideResNet(depth: 28, widthFactor: 10, dropRate: 0)),
        ("cifar_wideresnet40_8", .wideResNet(depth: 40, widthFactor: 8, dropRate: 0)),
        ("cifar_resnext29_16x64d", .resNeXt(depth: 29, cardinality: 16, bottleneckWidth: 64)),
    ]

    /// The model names, in the zoo's order.
    public static var names: [String] { architectures.map(\.0) }

    /// The folder pretrained weights are read from: `root`, else `$KILN_MODEL_DIR`, else `~/.kiln/models`.
    public static func modelDirectory(root: String? = nil) -> String {
        if let root { return root }
        if let env = ProcessInfo.processInfo.environment["KILN_MODEL_DIR"], !env.isEmpty { return env }
        return (NSHomeDirectory() as NSString).appendingPathComponent(".kiln/models")
    }

    /// Builds a model. Its top-level prefix is gluoncv's in a fresh process (`cifarresnetv10_`,
    /// `cifarwideresnet0_`, `cifarresnext0_`) on every call.
    ///
    /// - Parameters:
    ///   - pretrained: load `<directory>/NAME.params` (a Gluon `save_parameters` file); nothing is
    ///     downloaded. Without it the parameters are uninitialized: call
    ///     `collectParams().initialize(...)` or ``Block/loadParameters(from:allowMissing:ignoreExtra:)``.
    ///   - root: the folder of pretrained files (see ``modelDirectory(root:)``).
    ///   - classes: the output units.
    /// - Throws: ``GluonError/unknownModel(name:known:)`` listing the known names, or
    ///   ``GluonError/pretrainedFileMissing(model:path:)`` saying where to put the file.
    public static func get(_ name: String, pretrained: Bool = false, root: String? = nil, classes: Int = 10) throws -> HybridBlock {
        guard let arch = architectures.first(where: { $0.0 == name })?.1 else {
            throw GluonError.unknownModel(name: name, known: names)
        }
        let net = try NameScope.fresh { try CIFARNet(arch, classes: classes) }
        if pretrained {
            let path = (modelDirectory(root: root) as NSString).appendingPathComponent(name + ".params")
            guard FileManager.default.fileExists(atPath: path) else {
                throw GluonError.pretrainedFileMissing(model: name, path: path)
            }
            try net.loadParameters(from: path)
        }
        return net
    }
}
