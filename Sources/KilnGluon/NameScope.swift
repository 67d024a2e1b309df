import Synchronization
import KilnGraph

/// Gluon's name scopes (MXNet 1.x `_BlockScope`): where a new block takes its prefix from.
///
/// A block created while a scope is current takes `scope.prefix + hint + count + "_"` (the count per
/// hint within that scope) or, given a prefix, `scope.prefix + prefix`. A block with the empty prefix
/// opens no scope of its own: its children count in the scope that was current when they were made,
/// which is how gluoncv's `stage1_conv0`, `stage1_conv1`, ... run across residual blocks.
///
/// The current scope is task-local, so concurrent model construction on several threads cannot mix
/// counters; outside any scope, blocks count in ``global`` (MXNet's process-wide name manager).
public final class NameScope: Sendable {
    /// The prefix of the block owning this scope ("" for a root scope).
    public let prefix: String
    private let counters = Mutex<[String: Int]>([:])

    /// A scope whose blocks take names `prefix + hint + count + "_"`.
    public init(prefix: String = "") { self.prefix = prefix }

    /// The scope of blocks made outside any other scope (counts shared by the process, under a lock).
    public static let global = NameScope()

    /// The scope new blocks are created in; nil means ``global``.
    @TaskLocal public static var current: NameScope?

    /// Runs `body` with a fresh root scope current, so that the top-level block of a model is numbered
    /// from 0 (`cifarresnetv10_`) however many models were built before.
    public static func fresh<R>(_ body: () throws -> R) rethrows -> R {
        try $current.withValue(NameScope()) { try body() }
    }

    /// The next prefix for a block of kind `hint` made in this scope: `prefix + hint + count + "_"`.
    func nextPrefix(hint: String) -> String {
        let n = counters.withLock { c in
            let n = c[hint, default: 0]
            c[hint] = n + 1
            return n
        }
        return "\(prefix)\(hint)\(n)_"
    }
}

/// Names the ops of one traced block, as MXNet's `mx.name.Prefix` does while a block's scope is entered:
/// explicit names get the prefix (`conv0_` + `fwd`), automatic ones count per hint (`_plus0`, `activation1`).
///
/// A fresh one is current for each traced block that has a non-empty prefix; blocks with the empty
/// prefix name their ops in their parent's.
public final class OpNamer: Sendable {
    /// The prefix every name gets.
    public let prefix: String
    private let counters = Mutex<[String: Int]>([:])

    init(prefix: String) { self.prefix = prefix }

    /// The namer of the block being traced now; nil outside any block (KilnGraph's counters apply then).
    @TaskLocal public static var current: OpNamer?

    /// An explicit node name under the current prefix (`fwd` -> `cifarresnetv10_conv0_fwd`).
    public static func name(_ name: String) -> String { (current?.prefix ?? "") + name }

    /// An automatic node name for an op hint (`_plus` -> `cifarresnetv10_stage1__plus0`).
    public static func automatic(_ hint: String) -> String {
        guard let namer = current else { return NameManager.shared.next(hint) }
        let n = namer.counters.withLock { c in
            let n = c[hint, default: 0]
            c[hint] = n + 1
            return n
        }
        return "\(namer.prefix)\(hint)\(n)"
    }
}
