import Foundation

/// Optional wall-clock accounting of a training step by kind of work (issue 7's profile).
/// Off by default: then `measure` is one Bool test around the call. Layers wrap their leaf
/// kernel calls (never nested calls, so nothing is counted twice); what no phase claims —
/// rearranges, copies, residual adds, patch embedding, head, optimizer — is the step's
/// remainder. Call from the thread that drives the model (the kernels parallelise inside).
public enum StepProfile {
    public enum Phase: Int, CaseIterable, Sendable {
        case frozenGEMM, tunableGEMM, attention, layerNorm, activation

        public var label: String {
            switch self {
            case .frozenGEMM: return "frozen linear GEMMs (forward + input gradient)"
            case .tunableGEMM: return "tunable linear GEMMs (forward + input and weight gradients, bias sums)"
            case .attention: return "attention kernels (Q·Kᵀ, softmax, P·V and their backward)"
            case .layerNorm: return "LayerNorm forward + backward"
            case .activation: return "GELU / QuickGELU forward + backward"
            }
        }

        /// The phase's name in metrics.jsonl (`kernel_<key>_s`) and in aim-report's JSON.
        public var key: String {
            switch self {
            case .frozenGEMM: return "frozen_gemm"
            case .tunableGEMM: return "tunable_gemm"
            case .attention: return "attention"
            case .layerNorm: return "layer_norm"
            case .activation: return "activation"
            }
        }
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var nanos = [UInt64](repeating: 0, count: Phase.allCases.count)

    @inline(__always)
    public static func measure<R>(_ phase: Phase, _ body: () -> R) -> R {
        guard enabled else { return body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = body()
        nanos[phase.rawValue] &+= DispatchTime.now().uptimeNanoseconds &- t0
        return r
    }

    public static func reset() { for i in nanos.indices { nanos[i] = 0 } }
    /// Seconds spent in `phase` since the last reset.
    public static func seconds(_ phase: Phase) -> Double { Double(nanos[phase.rawValue]) * 1e-9 }
}
