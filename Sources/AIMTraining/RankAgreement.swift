import AIMDistributed
import Foundation

/// Every rank of a job must train the same model on the same list. Only tunable gradients are
/// allreduced: a rank whose node holds another backbone file at model.pretrained (or another
/// annotation file, or a config with another seed) would add gradients of another model or
/// another shard plan, and no number would show it. DDP broadcasts rank 0's weights at the start,
/// which would hide such a node; this refuses to start and names it.
enum RankAgreement {
    /// `items`: what must agree (a description naming its config key, and this rank's value).
    /// Every rank sees every value, so all of them throw the same error. `doing`: what the ranks
    /// would do differently, for the message.
    static func require(_ comm: any Communicator, _ items: [(what: String, value: String)], doing: String = "train") throws {
        guard comm.size > 1 else { return }
        let mine = ([ProcessInfo.processInfo.hostName] + items.map(\.value)).joined(separator: "\n")
        let all = comm.allgather(Array(mine.utf8), label: "rank-agreement").map {
            String(decoding: $0, as: UTF8.self).components(separatedBy: "\n")
        }
        var problems: [String] = []
        for (i, item) in items.enumerated() {
            func value(_ r: Int) -> String { all[r].count > i + 1 ? all[r][i + 1] : "?" }
            let differ = all.indices.filter { value($0) != value(0) }
            guard !differ.isEmpty else { continue }
            problems.append("\(item.what): rank 0 (\(all[0][0])) has \(value(0)), "
                            + differ.map { "rank \($0) (\(all[$0][0])) \(value($0))" }.joined(separator: ", "))
        }
        // Every rank holds the same list: all stop together, rank 0 saying why.
        guard problems.isEmpty else {
            throw AgreedStop(status: ExitStatus.failure, message: comm.rank != 0 ? nil : "the ranks would \(doing) different things: "
                             + problems.joined(separator: "; ") + ". Every rank must read the same files and config")
        }
    }
}
