/// A log file whose appends may fail (full disk) while training goes on: the first failure of a
/// run of them is reported, and the count lost when writes go through again. Shared by
/// metrics.jsonl and the TensorBoard event file.
struct LostRecords {
    private(set) var count = 0

    mutating func append(to path: String, what: String, tag: String, message: (String) -> Void, _ write: () throws -> Void) {
        do {
            try write()
            if count > 0 {
                message("\(tag): writing \(path) again after \(count) lost record(s)")
                count = 0
            }
        } catch {
            if count == 0 { message("error: \(what) not written: \(error); training goes on") }
            count += 1
        }
    }
}
