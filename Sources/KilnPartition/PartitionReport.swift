import Foundation
import KilnCore
import KilnRuntime

/// The explanation of one partitioning: each engine group with its nodes, inputs, outputs and baked
/// weights; the share of op nodes and of FLOPs offloaded; and, for every op node left to the
/// framework, why.
///
/// ```
/// Partition for engine 'cpu' (backend 'engine-cpu'), minimum group size 2, excluded ops: none
/// Offloaded 10 of 11 op nodes (90.9%) and 4.59 of 4.59 MFLOP (100.0%).
///
/// Group kiln_engine0: 10 nodes, 4.59 MFLOP
///   nodes:   conv1 (Convolution)
///            ...
///   inputs:  data, conv1_weight, ...
///   outputs: fc2_output
///   baked:   conv1_weight, ...
///
/// Left to the framework: 1 node
///   softmax (SoftmaxOutput): unsupported op SoftmaxOutput
/// ```
/// ``text()`` is stable (a snapshot test holds it); ``json()`` carries the same content.
public struct PartitionReport: Sendable, Equatable {
    /// An op node: its name and op.
    public struct Node: Sendable, Equatable {
        public let name: String
        public let op: String
        public init(name: String, op: String) {
            self.name = name
            self.op = op
        }
    }

    /// One engine group, as one engine node in the partitioned graph.
    public struct Group: Sendable, Equatable {
        /// The engine node's name (`kiln_engine0`).
        public let name: String
        /// Member op nodes in topological order.
        public let nodes: [Node]
        /// The engine node's inputs, named after the outer entries (`data`, `conv0_weight`, `pool1_output`).
        public let inputs: [String]
        /// The engine node's outputs, named after the entries they replace (`relu3_output`).
        public let outputs: [String]
        /// Inputs that are weights known at bind and read by this group only: the engine bakes them in
        /// and the framework no longer needs its copy.
        public let bakedWeights: [String]
        /// Estimated FLOPs of the members, when shapes were known.
        public let flops: Double?
    }

    /// Why an op node stays with the framework.
    public enum Reason: Sendable, Equatable, CustomStringConvertible {
        /// The engine has no entry for the op.
        case unsupportedOp(String)
        /// The engine does not handle an attribute value (`"layout=NHWC"`).
        case unsupportedAttribute(String)
        /// A weight input (`"weight"`) is not known at bind.
        case weightsNotKnownAtBind(String)
        /// Any other reason the engine gave.
        case unsupported(String)
        /// Supported, but its group has fewer op nodes than the minimum.
        case groupTooSmall(size: Int, minimum: Int)
        /// The op is in the user's exclusion list.
        case excludedByUser
        /// Supported, but joining the named group would have closed a cycle through the framework.
        case keptOutToAvoidCycle(group: String)

        /// The reason kind as a stable key (for JSON and for tests).
        public var kind: String {
            switch self {
            case .unsupportedOp: return "unsupported_op"
            case .unsupportedAttribute: return "unsupported_attribute"
            case .weightsNotKnownAtBind: return "weights_not_known_at_bind"
            case .unsupported: return "unsupported"
            case .groupTooSmall: return "group_too_small"
            case .excludedByUser: return "excluded_by_user"
            case .keptOutToAvoidCycle: return "kept_out_to_avoid_cycle"
            }
        }

        public var description: String {
            switch self {
            case let .unsupportedOp(op): return "unsupported op \(op)"
            case let .unsupportedAttribute(a): return "unsupported attribute value \(a)"
            case let .weightsNotKnownAtBind(w): return "weights not known at bind (\(w))"
            case let .unsupported(text): return "unsupported: \(text)"
            case let .groupTooSmall(size, minimum): return "group too small (\(size) op node\(size == 1 ? "" : "s"), minimum \(minimum))"
            case .excludedByUser: return "excluded by the user"
            case let .keptOutToAvoidCycle(group): return "kept out to avoid a cycle (joining \(group) would route a path out of it and back in)"
            }
        }

        /// The reason for a backend's `.unsupported` answer.
        init(_ r: SupportReason) {
            switch r {
            case let .unsupportedOp(op): self = .unsupportedOp(op)
            case let .unsupportedAttribute(a): self = .unsupportedAttribute(a)
            case let .weightsNotKnownAtBind(w): self = .weightsNotKnownAtBind(w)
            case let .other(text): self = .unsupported(text)
            }
        }
    }

    /// An op node left to the framework, with its reason.
    public struct FrameworkNode: Sendable, Equatable {
        public let name: String
        public let op: String
        public let reason: Reason
    }

    /// The backend asked (its ``KilnRuntime/Backend/name``).
    public let backend: String
    /// The engine named in the engine nodes' `backend` attribute.
    public let engine: String
    /// The minimum group size used.
    public let minGroupSize: Int
    /// Excluded op names, sorted.
    public let excludedOps: [String]
    /// Engine groups, in the order of their engine nodes.
    public let groups: [Group]
    /// Op nodes left to the framework, in topological order.
    public let frameworkNodes: [FrameworkNode]
    /// Values handed across a border between the framework and an engine group (or two groups),
    /// counted once per receiving side: each is a switch of runtime, with its copy or reorder.
    /// 0 when the engine takes the whole graph.
    public let switches: Int
    /// Op nodes of the original graph (variables not counted).
    public let opNodeCount: Int
    /// Estimated FLOPs of the whole original graph, when shapes were known.
    public let totalFLOPs: Double?

    /// Op nodes inside engine groups.
    public var offloadedNodeCount: Int { groups.reduce(0) { $0 + $1.nodes.count } }
    /// Share of op nodes offloaded, 0...1.
    public var nodeShare: Double { opNodeCount == 0 ? 0 : Double(offloadedNodeCount) / Double(opNodeCount) }
    /// Estimated FLOPs inside engine groups, when shapes were known.
    public var offloadedFLOPs: Double? {
        totalFLOPs == nil ? nil : groups.reduce(0) { $0 + ($1.flops ?? 0) }
    }
    /// Share of FLOPs offloaded, 0...1, when shapes were known.
    public var flopShare: Double? {
        guard let t = totalFLOPs, let o = offloadedFLOPs else { return nil }
        return t == 0 ? 0 : o / t
    }
    /// Every baked weight of every group: the arrays the framework may drop.
    public var bakedWeights: [String] { groups.flatMap(\.bakedWeights) }
    /// The reason of a framework node, by name.
    public func reason(of node: String) -> Reason? { frameworkNodes.first { $0.name == node }?.reason }
    /// The group holding an op node, by name.
    public func group(of node: String) -> Group? { groups.first { g in g.nodes.contains { $0.name == node } } }
}

// MARK: Rendering

extension PartitionReport {
    /// The report as text, stable from run to run (lines wrap at 100 columns).
    public func text() -> String {
        var out: [String] = []
        let excluded = excludedOps.isEmpty ? "none" : excludedOps.joined(separator: ", ")
        out.append("Partition for engine '\(engine)' (backend '\(backend)'), minimum group size \(minGroupSize), excluded ops: \(excluded)")
        var summary = "Offloaded \(offloadedNodeCount) of \(opNodeCount) op nodes (\(Self.percent(nodeShare)))"
        if let t = totalFLOPs, let o = offloadedFLOPs, let s = flopShare {
            summary += " and \(Self.flops(o, like: t)) of \(Self.flops(t, like: t)) (\(Self.percent(s)))."
        } else {
            summary += "; FLOPs unknown (no shapes were given)."
        }
        out.append(summary)
        out.append("\(groups.count) engine group\(groups.count == 1 ? "" : "s"), \(switches) framework-engine switch\(switches == 1 ? "" : "es").")
        for g in groups {
            out.append("")
            var head = "Group \(g.name): \(g.nodes.count) node\(g.nodes.count == 1 ? "" : "s")"
            if let f = g.flops { head += ", \(Self.flops(f, like: f))" }
            out.append(head)
            for (k, n) in g.nodes.enumerated() {
                out.append((k == 0 ? "  nodes:   " : "           ") + "\(n.name) (\(n.op))")
            }
            out += Self.wrapped("  inputs:  ", g.inputs)
            out += Self.wrapped("  outputs: ", g.outputs)
            out += Self.wrapped("  baked:   ", g.bakedWeights.isEmpty ? ["none"] : g.bakedWeights)
        }
        out.append("")
        out.append("Left to the framework: \(frameworkNodes.count) node\(frameworkNodes.count == 1 ? "" : "s")")
        for n in frameworkNodes { out.append("  \(n.name) (\(n.op)): \(n.reason)") }
        return out.joined(separator: "\n") + "\n"
    }

    /// The report as JSON with sorted keys.
    public func json() -> String {
        func number(_ v: Double?) -> Any { v.map { $0 as Any } ?? NSNull() }
        let object: [String: Any] = [
            "backend": backend,
            "engine": engine,
            "min_group_size": minGroupSize,
            "excluded_ops": excludedOps,
            "op_nodes": opNodeCount,
            "offloaded_op_nodes": offloadedNodeCount,
            "switches": switches,
            "node_share": nodeShare,
            "total_flops": number(totalFLOPs),
            "offloaded_flops": number(offloadedFLOPs),
            "flop_share": number(flopShare),
            "groups": groups.map { g -> [String: Any] in
                [
                    "name": g.name,
                    "nodes": g.nodes.map { ["name": $0.name, "op": $0.op] },
                    "inputs": g.inputs,
                    "outputs": g.outputs,
                    "baked_weights": g.bakedWeights,
                    "flops": number(g.flops),
                ]
            },
            "framework_nodes": frameworkNodes.map { n -> [String: Any] in
                ["name": n.name, "op": n.op, "reason": n.reason.kind, "detail": n.reason.description]
            },
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]),
              let text = String(data: data, encoding: .utf8) else { return "{}" }
        return text + "\n"
    }

    static func percent(_ share: Double) -> String { String(format: "%.1f%%", share * 100) }

    /// FLOPs in the unit that suits `scale` (so a part and its whole share a unit).
    static func flops(_ v: Double, like scale: Double) -> String {
        let units: [(Double, String)] = [(1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")]
        for (size, unit) in units where scale >= size { return String(format: "%.2f", v / size) + " " + unit }
        return String(format: "%.0f FLOP", v)
    }

    /// `label` then the items joined by ", ", wrapped at 100 columns under the first item.
    static func wrapped(_ label: String, _ items: [String]) -> [String] {
        var lines: [String] = []
        var line = label
        let indent = String(repeating: " ", count: label.count)
        for (k, item) in items.enumerated() {
            let piece = item + (k + 1 < items.count ? "," : "")
            if line.count > label.count && line.count + 1 + piece.count > 100 {
                lines.append(line)
                line = indent + piece
            } else {
                line += (line.count > label.count ? " " : "") + piece
            }
        }
        lines.append(line)
        return lines
    }
}
