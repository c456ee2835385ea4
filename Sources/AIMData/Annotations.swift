import Foundation

/// One labelled video: an absolute (or root-joined) path and a class index, with where it was
/// read from so a label found wrong later (`checkLabels`) can still name its line.
public struct VideoSample: Equatable, Sendable {
    public var path: String
    public var label: Int
    /// 1-based line of the annotation file (entry number for JSON formats); nil when built in code.
    public var line: Int?
    /// The class name the label was mapped from (Kinetics, SSv2); nil for formats with bare indices.
    public var className: String?
    /// For a sample of a tar shard: the video's byte range there (`path` is then
    /// `<shard>/<member name>`, a name for messages).
    public var range: ArchiveRange?
    public init(path: String, label: Int, line: Int? = nil, className: String? = nil, range: ArchiveRange? = nil) {
        self.path = path; self.label = label; self.line = line; self.className = className; self.range = range
    }

    /// The same video with the same label; where it was read from does not change what it is.
    public static func == (a: VideoSample, b: VideoSample) -> Bool { a.path == b.path && a.label == b.label }
}

/// A malformed annotation: the file, the 1-based line (or JSON entry) and what is wrong.
public struct AnnotationError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let line: Int?
    public let message: String
    public init(file: String, line: Int?, message: String) { self.file = file; self.line = line; self.message = message }
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

/// The annotation formats of the datasets AIM uses; a config chooses one (`data.format`).
public enum AnnotationFormat: String, CaseIterable, Sendable {
    /// mmaction2 video list: `relative/path.mp4 label` per line.
    case videoList = "list"
    /// Kinetics-400/700 CSV: `label,youtube_id,time_start,time_end,split[,…]` with a header;
    /// files `<youtube_id>_<start:06d>_<end:06d>.mp4`, directly under the root or under
    /// `root/<label>/` (spaces as `_` too; looked up per class).
    case kineticsCSV = "kinetics_csv"
    /// Something-Something-V2: `something-something-v2-{train,validation}.json` (id, template)
    /// and `labels.json` (template without brackets → index); files `<id>.webm`.
    case ssv2JSON = "ssv2_json"
    /// Diving-48: JSON list of `{"vid_name": …, "label": …}`; files `<vid_name>.mp4`.
    case diving48JSON = "diving48_json"
}

/// Reads an annotation file. `classList`: for Kinetics, a file with one class name per line
/// giving the index order; for SSv2 the `labels.json` (default: the one beside the annotation
/// file). `kineticsClasses`: the index order of Kinetics names without a class list (default:
/// the file's own names sorted, which numbers a file that lacks a class differently).
public func loadAnnotations(format: AnnotationFormat, file: String, root: String,
                            classList: String? = nil, kineticsClasses: [String]? = nil) throws -> [VideoSample] {
    guard let data = FileManager.default.contents(atPath: file) else {
        throw AnnotationError(file: file, line: nil, message: "cannot read the annotation file")
    }
    switch format {
    case .videoList: return try parseVideoList(data, file: file, root: root)
    case .kineticsCSV: return try parseKineticsCSV(data, file: file, root: root, classList: classList, classes: kineticsClasses)
    case .ssv2JSON:
        guard let labels = classList ?? ssv2LabelsBeside(file) else {
            throw AnnotationError(file: file, line: nil, message: "no SSv2 labels beside it (labels.json or something-something-v2-labels.json): "
                + "set data.class_list (aim-data: --class-list) to the dataset's something-something-v2-labels.json")
        }
        return try parseSSv2(data, file: file, root: root, labelsFile: labels)
    case .diving48JSON: return try parseDiving48(data, file: file, root: root)
    }
}

func joinRoot(_ root: String, _ rel: String) -> String {
    if root.isEmpty || rel.hasPrefix("/") { return rel }
    return (root as NSString).appendingPathComponent(rel)
}

/// `data` without a leading UTF-8 byte-order mark (EF BB BF), which Windows editors write and
/// which would otherwise become part of the first path, class name or JSON token.
func withoutBOM(_ data: Data) -> Data {
    data.starts(with: [0xEF, 0xBB, 0xBF]) ? data.dropFirst(3) : data
}

/// The lines of an annotation text file, whoever wrote it: a byte-order mark is dropped and a
/// line may end in LF, CRLF or CR, as Python's `open().readlines()` reads them (a Swift String
/// split on "\n" misses CRLF: "\r\n" is one Character). Element i is line i + 1; the text after
/// the last line break is the last element ("" when the file ends with a break).
func textLines(_ data: Data, file: String) throws -> [String] {
    let bytes = [UInt8](withoutBOM(data))
    var lines: [String] = []
    var start = 0, i = 0
    func endLine(at end: Int) throws {
        // CR and LF bytes never occur inside a multi-byte UTF-8 sequence, so splitting bytes first is safe.
        guard let s = String(validating: bytes[start..<end], as: UTF8.self) else {
            throw AnnotationError(file: file, line: lines.count + 1, message: "not UTF-8 text")
        }
        // Fast byte test first (0xC2 leads U+0080…U+00BF, the C1 controls among them).
        if bytes[start..<end].contains(where: { $0 < 0x20 && $0 != 0x09 || $0 == 0x7F || $0 == 0xC2 }),
           let c = controlCharacter(in: s) {
            throw AnnotationError(file: file, line: lines.count + 1,
                                  message: "control character \(c.name) at column \(c.column) (only tab may appear in a line)")
        }
        lines.append(s)
    }
    while i < bytes.count {
        let b = bytes[i]
        if b == 0x0A || b == 0x0D {
            try endLine(at: i)
            i += b == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A ? 2 : 1
            start = i
        } else {
            i += 1
        }
    }
    try endLine(at: bytes.count)
    return lines
}

/// The first control character in `s` other than tab (NUL and the rest of C0, DEL, C1): its
/// 1-based column (in Unicode scalars) and code. A NUL in a path is cut off by the C calls
/// that open it; in a class name it goes raw into CSV and text output. Tab separates fields.
func controlCharacter(in s: String) -> (column: Int, name: String)? {
    for (i, u) in s.unicodeScalars.enumerated() where u != "\t" && (u.value < 0x20 || (0x7F...0x9F).contains(u.value)) {
        let hex = String(u.value, radix: 16, uppercase: true)
        let code = "U+" + String(repeating: "0", count: 4 - hex.count) + hex
        return (i + 1, u.value == 0 ? code + " (NUL)" : code)
    }
    return nil
}

/// The class names of one file seen so far, to refuse a name given twice: the two classes
/// would print alike, and in a class list one of the two indices could never be a label.
/// Names are compared without surrounding whitespace, as the text forms read them.
struct ClassNames {
    let file: String
    private var lineOf: [String: Int] = [:]
    init(file: String) { self.file = file }

    mutating func add(_ name: String, line: Int) throws {
        let key = name.trimmingCharacters(in: .whitespaces)
        if let first = lineOf[key] {
            throw AnnotationError(file: file, line: line, message: "class name `\(key)` is on line \(first) too (each class needs its own name)")
        }
        lineOf[key] = line
    }
}

/// The non-empty, trimmed lines of a name-per-line file (Kinetics class list, SSv2 labels as
/// text); a name given twice is refused naming both lines.
func nameLines(_ data: Data, file: String) throws -> [String] {
    var names: [String] = [], seen = ClassNames(file: file)
    for (i, raw) in try textLines(data, file: file).enumerated() {
        let name = raw.trimmingCharacters(in: .whitespaces)
        if name.isEmpty { continue }
        try seen.add(name, line: i + 1)
        names.append(name)
    }
    return names
}

/// mmaction2 `VideoDataset.load_annotations` (single label): `filename label`, blank lines skipped.
public func parseVideoList(_ data: Data, file: String, root: String) throws -> [VideoSample] {
    var out: [VideoSample] = []
    for (i, raw) in try textLines(data, file: file).enumerated() {
        let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if line.isEmpty { continue }
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard parts.count == 2 else {
            // mmaction2's multi_class lists (`path l1 l2 …`) look like this: say so, not only the count.
            let multi = parts.count > 2 && parts.dropFirst().allSatisfy { Int($0) != nil }
                ? " (several labels: multi-label lists, mmaction2's multi_class, are not supported)" : ""
            throw AnnotationError(file: file, line: i + 1, message: "expected `path label`, found \(parts.count) fields: \(line)\(multi)")
        }
        guard let label = Int(parts[1]), label >= 0 else {
            throw AnnotationError(file: file, line: i + 1, message: "label `\(parts[1])` is not a non-negative integer")
        }
        out.append(VideoSample(path: joinRoot(root, String(parts[0])), label: label, line: i + 1))
    }
    return out
}

/// Splits one CSV line, honouring double quotes (`"a, b"` and `""` inside quotes).
func csvFields(_ line: Substring) -> [String] {
    var fields: [String] = [], cur = "", quoted = false
    var it = line.makeIterator()
    var pending: Character? = nil
    while let ch = pending ?? it.next() {
        pending = nil
        if quoted {
            if ch == "\"" {
                if let n = it.next() { if n == "\"" { cur.append("\"") } else { quoted = false; pending = n } } else { quoted = false }
            } else { cur.append(ch) }
        } else if ch == "\"" { quoted = true }
        else if ch == "," { fields.append(cur); cur = "" }
        else { cur.append(ch) }
    }
    fields.append(cur)
    return fields.map { $0.trimmingCharacters(in: .whitespaces) }
}

public func parseKineticsCSV(_ data: Data, file: String, root: String, classList: String?, classes given: [String]? = nil) throws -> [VideoSample] {
    let all = try textLines(data, file: file)
    guard let header = all.first.map({ csvFields(Substring($0.trimmingCharacters(in: .whitespacesAndNewlines))) }) else {
        throw AnnotationError(file: file, line: 1, message: "empty CSV")
    }
    func column(_ name: String) throws -> Int {
        guard let i = header.firstIndex(of: name) else {
            throw AnnotationError(file: file, line: 1, message: "header has no `\(name)` column (found \(header.joined(separator: ",")))")
        }
        return i
    }
    let cLabel = try column("label"), cId = try column("youtube_id")
    let cStart = try column("time_start"), cEnd = try column("time_end")
    var rows: [(line: Int, label: String, name: String)] = []
    for (i, raw) in all.enumerated().dropFirst() {
        let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if line.isEmpty { continue }
        let f = csvFields(Substring(line))
        guard f.count >= header.count else {
            throw AnnotationError(file: file, line: i + 1, message: "expected \(header.count) fields, found \(f.count)")
        }
        let s = try kineticsSeconds(f[cStart], column: "time_start", file: file, line: i + 1)
        let e = try kineticsSeconds(f[cEnd], column: "time_end", file: file, line: i + 1)
        guard s <= e else {
            throw AnnotationError(file: file, line: i + 1, message: "time_start `\(f[cStart])` is after time_end `\(f[cEnd])`")
        }
        guard !f[cId].isEmpty, !f[cLabel].isEmpty else {
            throw AnnotationError(file: file, line: i + 1, message: "empty label or youtube_id")
        }
        rows.append((i + 1, f[cLabel], "\(f[cId])_\(pad6(Int(s)))_\(pad6(Int(e))).mp4"))
    }
    var classes: [String]
    if let cl = classList {
        guard let d = FileManager.default.contents(atPath: cl) else {
            throw AnnotationError(file: cl, line: nil, message: "cannot read the class list")
        }
        classes = try nameLines(d, file: cl)
    } else {
        classes = given ?? Array(Set(rows.map(\.label))).sorted()
    }
    var index: [String: Int] = [:]
    for (i, c) in classes.enumerated() { index[c] = i }
    // Folder layout, per row from one listing of the root: root/<label>/<file> when that class
    // folder exists, as the label or with its spaces as `_` (mmaction2's rename_classnames.sh),
    // else root/<file>.
    var isFolder: [String: Bool] = [:]
    func folder(_ label: String) -> String? {
        for name in [label, label.replacingOccurrences(of: " ", with: "_")] {
            if let known = isFolder[name] { if known { return name } else { continue } }
            var isDir: ObjCBool = false
            let found = FileManager.default.fileExists(atPath: joinRoot(root, name), isDirectory: &isDir) && isDir.boolValue
            isFolder[name] = found
            if found { return name }
        }
        return nil
    }
    return try rows.map { r in
        guard let l = index[r.label] else {
            throw AnnotationError(file: file, line: r.line, message: "label `\(r.label)` is not "
                + (classList != nil ? "in the class list \(classList!)" : given != nil ? "among the run's classes (data.classes, else the training CSV's labels)" : "in the class list"))
        }
        return VideoSample(path: joinRoot(root, folder(r.label).map { $0 + "/" + r.name } ?? r.name), label: l,
                           line: r.line, className: r.label)
    }
}

/// The largest Kinetics time taken, in seconds (~31 years): far beyond any video, and small
/// enough that the whole seconds of the file name are an `Int` on every platform.
let kineticsMaxSeconds = 999_999_999

/// A Kinetics `time_start`/`time_end` field in seconds: a plain decimal number as Python's
/// `float()` reads one (`5`, `5.0`, `.5`, `5.`, `1e1`), non-negative and at most
/// `kineticsMaxSeconds`. Swift's `Double(String)` also takes `0x10`, `inf`, `nan` and `1e19`
/// (which then traps as an `Int`): each is refused here with the file and line instead.
func kineticsSeconds(_ text: String, column: String, file: String, line: Int) throws -> Double {
    func isDigit(_ u: UInt8) -> Bool { u >= 0x30 && u <= 0x39 }
    let b = Array(text.utf8)
    let negative = b.first == UInt8(ascii: "-")
    var i = negative ? 1 : 0
    let intStart = i
    while i < b.count, isDigit(b[i]) { i += 1 }
    var digits = i - intStart
    if i < b.count, b[i] == UInt8(ascii: ".") {
        i += 1
        let fracStart = i
        while i < b.count, isDigit(b[i]) { i += 1 }
        digits += i - fracStart
    }
    var decimal = digits > 0
    if decimal, i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
        i += 1
        if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
        let expStart = i
        while i < b.count, isDigit(b[i]) { i += 1 }
        decimal = i > expStart
    }
    guard decimal, i == b.count, let v = Double(text) else {
        throw AnnotationError(file: file, line: line, message: "\(column) `\(text)` is not a decimal number of seconds")
    }
    if negative && v != 0 {
        throw AnnotationError(file: file, line: line, message: "\(column) `\(text)` is negative")
    }
    guard v.isFinite, v <= Double(kineticsMaxSeconds) else {
        throw AnnotationError(file: file, line: line, message: "\(column) `\(text)` is out of range (at most \(kineticsMaxSeconds) seconds)")
    }
    return v
}

/// Python's `'{:06d}'.format(n)`.
func pad6(_ n: Int) -> String {
    let s = String(n)
    return s.count >= 6 ? s : String(repeating: "0", count: 6 - s.count) + s
}

private func jsonArray(_ data: Data, file: String) throws -> [[String: Any]] {
    let obj: Any
    do { obj = try JSONSerialization.jsonObject(with: withoutBOM(data)) } catch {
        throw AnnotationError(file: file, line: nil, message: "invalid JSON: \(error.localizedDescription)")
    }
    guard let arr = obj as? [Any] else { throw AnnotationError(file: file, line: nil, message: "expected a JSON list") }
    return try arr.enumerated().map { i, e in
        guard let d = e as? [String: Any] else {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) is not an object")
        }
        return d
    }
}

/// The members of the JSON object in `data` in file order, each with the 1-based line its name
/// is on (JSONSerialization gives a dictionary: no order, no lines, and only one of two equal
/// names); nil when `data` is not a JSON object. Line breaks count as in `textLines`.
/// With `classNames`, the names are class names: one given twice (also when only surrounding
/// whitespace differs), which the dictionary would keep once without a word, is refused
/// naming both lines, as is a name that holds a control character.
func jsonObjectMembers(_ data: Data, classNames file: String) throws -> [(name: String, value: Any, line: Int)]? {
    guard let members = jsonObjectMembers(data) else { return nil }
    var seen = ClassNames(file: file)
    for m in members {
        try checkJSONClassName(m.name, file: file, line: m.line)
        try seen.add(m.name, line: m.line)
    }
    return members
}

func jsonObjectMembers(_ data: Data) -> [(name: String, value: Any, line: Int)]? {
    let d = withoutBOM(data)
    guard let obj = (try? JSONSerialization.jsonObject(with: d)) as? [String: Any] else { return nil }
    // The text is valid JSON (it parsed): a small scan finds the top-level names; anything
    // unexpected falls back to the dictionary, without lines worth the name.
    let b = [UInt8](d)
    var i = 0, line = 1
    func step() {
        if b[i] == 0x0A || (b[i] == 0x0D && (i + 1 == b.count || b[i + 1] != 0x0A)) { line += 1 }
        i += 1
    }
    func skipSpace() { while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { step() } }
    /// At a `"`: moves past the closing quote, returns where the string (quotes included) began.
    func skipString() -> Int? {
        guard i < b.count, b[i] == UInt8(ascii: "\"") else { return nil }
        let begin = i
        step()
        while i < b.count, b[i] != UInt8(ascii: "\"") { if b[i] == UInt8(ascii: "\\") { step() }; if i < b.count { step() } }
        guard i < b.count else { return nil }
        step()
        return begin
    }
    /// Moves past one value: a string, or anything up to a `,` or `}` outside brackets and strings.
    func skipValue() -> Bool {
        var depth = 0
        while i < b.count {
            switch b[i] {
            case UInt8(ascii: "\""): guard skipString() != nil else { return false }; continue
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): if depth == 0 { return true }; depth -= 1
            case UInt8(ascii: ","): if depth == 0 { return true }
            default: break
            }
            step()
        }
        return false
    }
    func scan() -> [(name: String, value: Any, line: Int)]? {
        var out: [(name: String, value: Any, line: Int)] = []
        skipSpace()
        guard i < b.count, b[i] == UInt8(ascii: "{") else { return nil }
        step()
        while true {
            skipSpace()
            guard i < b.count else { return nil }
            if b[i] == UInt8(ascii: "}") { return out }
            if b[i] == UInt8(ascii: ",") { step(); skipSpace() }
            let at = line
            guard let begin = skipString(),
                  let name = (try? JSONSerialization.jsonObject(with: Data(b[begin..<i]), options: .fragmentsAllowed)) as? String,
                  let value = obj[name] else { return nil }
            skipSpace()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { return nil }
            step()
            skipSpace()
            guard skipValue() else { return nil }
            out.append((name, value, at))
        }
    }
    if let members = scan() { return members }
    return obj.keys.sorted().map { ($0, obj[$0]!, 1) }
}

/// The class of JSON `true`/`false` as JSONSerialization gives them (`__NSCFBoolean`, on Linux
/// as on Darwin); numbers are other NSNumber classes.
private let jsonBooleanClass = type(of: NSNumber(value: true))

/// A JSON boolean's value; nil for anything else. JSONSerialization gives an NSNumber for a
/// boolean as for a number, and `true as? Int` is 1 (`is Bool` holds for 0 and 1 too): only the
/// class tells them apart.
func jsonBoolean(_ v: Any?) -> Bool? {
    guard let n = v as? NSNumber, type(of: n) == jsonBooleanClass else { return nil }
    return n.boolValue
}

/// A JSON string, or a number as text; nil for anything else, booleans included.
private func stringOrNumber(_ v: Any?) -> String? {
    if let s = v as? String { return s }
    if jsonBoolean(v) == nil, let n = v as? NSNumber { return n.stringValue }
    return nil
}

/// The SSv2 labels file beside an annotation file, under the name mmaction2's tools use or the
/// one the dataset ships; nil when neither is there.
func ssv2LabelsBeside(_ file: String) -> String? {
    let folder = (file as NSString).deletingLastPathComponent as NSString
    return ["labels.json", "something-something-v2-labels.json"].map { folder.appendingPathComponent($0) }
        .first { FileManager.default.fileExists(atPath: $0) }
}

/// SSv2: label index = labels.json[template with "[" and "]" removed]. Errors name the entry
/// (1-based) as the "line".
public func parseSSv2(_ data: Data, file: String, root: String, labelsFile: String) throws -> [VideoSample] {
    guard let ld = FileManager.default.contents(atPath: labelsFile) else {
        throw AnnotationError(file: labelsFile, line: nil, message: "cannot read SSv2 labels")
    }
    var labels: [String: Int] = [:]
    // labels.json maps template → index; a plain text file lists templates in index order.
    guard let members = try jsonObjectMembers(ld, classNames: labelsFile) else {
        let names: [String]
        do { names = try nameLines(ld, file: labelsFile) } catch let e as AnnotationError where e.message != "not UTF-8 text" {
            throw e  // text with a bad line: that line
        } catch {
            throw AnnotationError(file: labelsFile, line: nil, message: "SSv2 labels are neither a JSON object nor text")
        }
        for (i, name) in names.enumerated() { labels[name] = i }
        return try ssv2Entries(data, file: file, root: root, labels: labels, labelsFile: labelsFile)
    }
    for m in members {
        if let b = jsonBoolean(m.value) {
            throw AnnotationError(file: labelsFile, line: m.line, message: "class `\(m.name)`: index is a boolean (\(b)), not an integer")
        }
        guard let s = stringOrNumber(m.value), let i = Int(s) else {
            throw AnnotationError(file: labelsFile, line: m.line, message: "label of `\(m.name)` is not an integer")
        }
        labels[m.name] = i
    }
    return try ssv2Entries(data, file: file, root: root, labels: labels, labelsFile: labelsFile)
}

/// Refuses a class name of a JSON label file (SSv2 labels.json) that holds a control character.
func checkJSONClassName(_ name: String, file: String, line: Int) throws {
    if let c = controlCharacter(in: name) {
        throw AnnotationError(file: file, line: line, message: "a class name holds control character \(c.name)")
    }
}

/// Refuses a string of JSON entry `entry` (1-based) that holds a control character: it would
/// become part of a path or a class name.
private func checkJSONString(_ s: String, key: String, entry: Int, file: String) throws {
    if let c = controlCharacter(in: s) {
        throw AnnotationError(file: file, line: entry, message: "entry \(entry): `\(key)` holds control character \(c.name)")
    }
}

private func ssv2Entries(_ data: Data, file: String, root: String, labels: [String: Int], labelsFile: String) throws -> [VideoSample] {
    try jsonArray(data, file: file).enumerated().map { i, e in
        if let b = jsonBoolean(e["id"]) {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1): `id` is a boolean (\(b)), not a video id")
        }
        guard let id = stringOrNumber(e["id"]) else {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) has no `id`")
        }
        // A number is a whole one (`1.5` would name `1.5.webm`, `1e30` `1e+30.webm`).
        if e["id"] is NSNumber, Int(id) == nil {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1): `id` \(id) is not a whole number")
        }
        if id.isEmpty { throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1): `id` is empty") }
        try checkJSONString(id, key: "id", entry: i + 1, file: file)
        guard let template = e["template"] as? String else {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) (id \(id)) has no `template`")
        }
        try checkJSONString(template, key: "template", entry: i + 1, file: file)
        let name = template.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "")
        guard let l = labels[name] else {
            throw AnnotationError(file: file, line: i + 1, message: "template `\(name)` of id \(id) is not in \(labelsFile)")
        }
        return VideoSample(path: joinRoot(root, id + ".webm"), label: l, line: i + 1, className: name)
    }
}

public func parseDiving48(_ data: Data, file: String, root: String) throws -> [VideoSample] {
    try jsonArray(data, file: file).enumerated().map { i, e in
        guard let name = e["vid_name"] as? String else {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) has no `vid_name`")
        }
        try checkJSONString(name, key: "vid_name", entry: i + 1, file: file)
        if name.isEmpty { throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1): `vid_name` is empty") }
        if let b = jsonBoolean(e["label"]) {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) (\(name)): `label` is a boolean (\(b)), not an integer")
        }
        guard let s = stringOrNumber(e["label"]), let l = Int(s), l >= 0 else {
            throw AnnotationError(file: file, line: i + 1, message: "entry \(i + 1) (\(name)) has no integer `label`")
        }
        return VideoSample(path: joinRoot(root, name + ".mp4"), label: l, line: i + 1)
    }
}

/// Refuses the first sample whose label the classifier cannot output (outside 0..<numClasses),
/// naming its line of `file` and class: caught at load time instead of as an out-of-range index
/// in the loss hours into training. Only used labels count, so a class list longer than the
/// model's classes is fine.
public func checkLabels(_ samples: [VideoSample], file: String, numClasses: Int) throws {
    for s in samples where s.label < 0 || s.label >= numClasses {
        let name = s.className.map { " (`\($0)`)" } ?? ""
        throw AnnotationError(file: file, line: s.line,
                              message: "label \(s.label)\(name) is outside 0..<\(max(numClasses, 0)) (model.num_classes = \(numClasses))")
    }
}
