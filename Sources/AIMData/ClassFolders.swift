import Foundation

/// Videos laid out one folder per class (`root/<class>/<video>`, as torchvision's ImageFolder
/// and mmaction2's `build_file_list.py --level 2` read them), turned into an mmaction2 video
/// list (`<class>/<video> <label>`) and a label map (line i names label i), so a user's own
/// videos train without writing either by hand.
public struct ClassFolders: Sendable {
    public let root: String
    /// Label i is `classes[i]`: the label map's order when one was given, else the folders' names sorted.
    public let classes: [String]
    /// Paths relative to `root`, sorted, with their labels.
    public let entries: [(path: String, label: Int)]
    /// Files of `root` and of its class folders that are not videos by their extension, or not inside a class folder (relative).
    public let ignored: [String]
    /// Files deeper than `root/<class>/<video>` (relative, sorted): not listed, as mmaction2's
    /// `build_file_list.py --level 2` lists only `root/<class>/<video>`.
    public let deeper: [String]
    /// Classes of the label map with no folder (or no video) under `root`.
    public let classesWithoutVideos: [String]

    /// Video file extensions, lower-case.
    public static let videoExtensions = VideoReader.fileExtensions

    /// `labelMap`: label by an existing map (a validation folder must use the training folder's
    /// labels); a class folder it does not name is an error. nil: the class folders, sorted.
    public static func scan(root: String, labelMap: LabelMap?) throws -> ClassFolders {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: root, isDirectory: &isDir), isDir.boolValue else {
            throw AnnotationError(file: root, line: nil, message: "no such folder (expected ROOT/<class>/<video> files)")
        }
        let top = try listing(root).sorted { $0.name < $1.name }
        let folders = top.filter(\.isDir).map(\.name)
        var ignored = top.filter { !$0.isDir }.map(\.name)
        guard !folders.isEmpty else {
            throw AnnotationError(file: root, line: nil, message: "no class folders in it (expected ROOT/<class>/<video> files)")
        }
        let classes = labelMap?.names ?? folders
        if let labelMap {
            let unknown = folders.filter { !labelMap.names.contains($0) }
            if !unknown.isEmpty {
                throw AnnotationError(file: labelMap.path, line: nil, message: "does not name the class folder(s) \(unknown.prefix(5).map { "`\($0)`" }.joined(separator: ", ")) of \(root)\(unknown.count > 5 ? " (\(unknown.count) in all)" : "") — a label map of another dataset? Remove it to write one from these folders")
            }
        }
        var entries: [(path: String, label: Int)] = []
        var deeper: [String] = []
        // ROOT and the folders above it, by real path: a link to one of them is a loop.
        var above: Set<String> = []
        var up = realPath(root)
        while above.insert(up).inserted { up = (up as NSString).deletingLastPathComponent }
        for folder in folders {
            let label = classes.firstIndex(of: folder)!
            let dir = (root as NSString).appendingPathComponent(folder)
            // A linked class folder is followed (as os.walk(followlinks=True)), but not one that holds ROOT:
            // its "videos" would be ROOT's own files and its subfolders ROOT's classes again.
            let real = realPath(dir)
            if above.contains(real) {
                throw AnnotationError(file: root, line: nil, message: "class folder `\(folder)` is a link to \(real), which holds \(root) itself; remove the link")
            }
            guard let children = try? listing(dir) else {
                throw AnnotationError(file: dir, line: nil, message: "cannot read the class folder")
            }
            var found: [String] = []
            for (name, isDir) in children {
                let path = folder + "/" + name
                if isDir {
                    // Only counted: mmaction2's `--level 2` lists ROOT/<class>/<video> alone.
                    deeper += filesBelow((dir as NSString).appendingPathComponent(name), rel: path, ancestors: above.union([real]))
                } else if videoExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    found.append(path)
                } else {
                    ignored.append(path)
                }
            }
            entries += found.sorted().map { ($0, label) }
        }
        // mmaction2's list splits each line at whitespace: such a path could not be read back.
        let spaced = entries.map(\.path).filter { $0.contains { $0.isWhitespace } }
        if !spaced.isEmpty {
            throw AnnotationError(file: root, line: nil, message: "\(spaced.count) video path(s) hold whitespace, which a video list cannot hold (mmaction2 splits its lines at whitespace): \(spaced.prefix(3).map { "`\($0)`" }.joined(separator: ", ")); rename them, e.g. spaces to underscores")
        }
        guard !entries.isEmpty else {
            let hint = deeper.isEmpty ? "" : "; \(deeper.count) file(s) deeper, e.g. \(deeper.sorted()[0]), are not listed: only ROOT/<class>/<video> is (as mmaction2's build_file_list.py --level 2)"
            throw AnnotationError(file: root, line: nil, message: "no video files (\(videoExtensions.sorted().joined(separator: ", "))) in its class folders\(hint)")
        }
        let used = Set(entries.map(\.label))
        return ClassFolders(root: root, classes: classes, entries: entries, ignored: ignored, deeper: deeper.sorted(),
                            classesWithoutVideos: classes.indices.filter { !used.contains($0) }.map { classes[$0] })
    }

    /// The entries of `dir` but hidden ones, each with whether it is a folder; links are followed
    /// (`stat`), so a linked folder is a folder and a broken link a file.
    static func listing(_ dir: String) throws -> [(name: String, isDir: Bool)] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { !$0.hasPrefix(".") }.map { name in
            var d: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(name), isDirectory: &d)
            return (name, d.boolValue)
        }
    }

    /// Every file below `dir` (named `rel` + "/…"), links followed as os.walk(followlinks=True)
    /// follows them, except a link to one of `ancestors` (real paths): that would loop without end.
    static func filesBelow(_ dir: String, rel: String, ancestors: Set<String>) -> [String] {
        let real = realPath(dir)
        guard !ancestors.contains(real), let children = try? listing(dir) else { return [] }
        var files: [String] = []
        for (name, isDir) in children {
            if isDir {
                files += filesBelow((dir as NSString).appendingPathComponent(name), rel: rel + "/" + name, ancestors: ancestors.union([real]))
            } else {
                files.append(rel + "/" + name)
            }
        }
        return files
    }

    static func realPath(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    /// The mmaction2 video list: one `path label` line per video.
    public var listText: String { entries.map { "\($0.path) \($0.label)\n" }.joined() }

    /// The label map: line i names label i.
    public var classesText: String { classes.map { $0 + "\n" }.joined() }
}
