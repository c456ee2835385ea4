import Foundation

/// A run's `metrics.jsonl` as mmaction2 (0.x, mmcv's TextLoggerHook) writes its `<time>.log.json`:
/// one JSON object per line, `mode`, `epoch` (from 1) and `iter` (within the epoch) in each, its
/// metric names (`loss_cls`, `top1_acc`, `top5_acc`, `mean_class_accuracy`, `memory` in MB). Why:
/// a user's `tools/analysis/analyze_logs.py` and dashboards read those names.
public enum MMActionLog {
    /// The lines, in step order; `note` hears about what could not be carried over exactly.
    public static func lines(_ records: [Curves.Record], run: String, note: (String) -> Void = { _ in }) -> [String] {
        // mmcv's first line is the run's environment, without `epoch`; some copies of analyze_logs.py skip it unread.
        let info = ["env_info": "aim-swift run \(run) (aim-report mmaction-log of its metrics.jsonl)", "exp_name": (run as NSString).lastPathComponent]
        var out = [(try? JSONSerialization.data(withJSONObject: info, options: [.sortedKeys, .withoutEscapingSlashes])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"]
        var lr: Double?
        // Records of builds before `iter` counted `epoch` as epochs completed and had no `iter`
        // (a run resumed by a newer build holds both kinds: each record is read as what it is).
        if records.contains(where: { $0.values["iter"] == nil }) {
            note("records without \"iter\" (an older build): their iter is the step, and a step's epoch the epochs completed + 1")
        }
        for r in records {
            func value(_ key: String) -> Double? { r.values[key] }
            let older = value("iter") == nil
            // An older validation ran at an epoch's end, where the epochs completed are its number.
            let epoch = Int(value("epoch") ?? 0) + (older && r.mode == "train" ? 1 : 0)
            let iter = Int(value("iter") ?? Double(r.step))
            var o: [String: Any] = ["mode": r.mode, "epoch": epoch, "iter": iter, "step": r.step]
            switch r.mode {
            case "train":
                lr = value("lr")
                for (ours, theirs) in [("lr", "lr"), ("loss", "loss"), ("loss", "loss_cls"), ("top1", "top1_acc"), ("top5", "top5_acc"),
                                       ("time", "time"), ("data_time", "data_time"), ("memory_mb", "memory")] {
                    if let v = value(ours) { o[theirs] = theirs == "memory" ? Double(Int(v)) : v }
                }
            case "val":
                if let lr { o["lr"] = lr }
                for (ours, theirs) in [("top1", "top1_acc"), ("top5", "top5_acc"), ("mean_class_accuracy", "mean_class_accuracy")] {
                    if let v = value(ours) { o[theirs] = v }
                }
            default: continue
            }
            if let data = try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes]) { out.append(String(decoding: data, as: UTF8.self)) }
        }
        return out
    }
}
