import AIMConfig
import Foundation
import XCTest

/// Loading, validation, overrides, inheritance and the dump of experiment configs.
final class ConfigTests: XCTestCase {
    var dir: String!

    override func setUp() {
        dir = NSTemporaryDirectory() + "config-tests-\(getpid())-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir + "/_base_", withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let path = dir + "/" + name
        try! text.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }

    /// Asserts loading fails and every fragment appears in the message.
    func assertFails(_ path: String, overrides: [String] = [], _ fragments: [String],
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Config.load(path: path, overrides: overrides), file: file, line: line) { e in
            XCTAssertTrue(e is ConfigError, "\(type(of: e))", file: file, line: line)
            let text = "\(e)"
            for f in fragments {
                XCTAssertTrue(text.contains(f), "expected \"\(f)\" in:\n\(text)", file: file, line: line)
            }
        }
    }

    // MARK: schema and defaults

    func testDefaultsAreTheOfficialK400Setting() {
        let c = Config()
        for key in ConfigSchema.keys {
            XCTAssertEqual(c.value(key.name), key.defaultValue, key.name)
        }
        XCTAssertEqual(c.string("model.backbone"), "clip")
        XCTAssertEqual(c.int("model.width"), 768)
        XCTAssertEqual(c.double("model.mlp_ratio"), 4)
        XCTAssertEqual(c.strings("model.adapters"), ["temporal", "spatial", "joint"])
        XCTAssertEqual(c.double("model.adapter_scale"), 0.5)
        XCTAssertEqual(c.double("train.lr"), 3e-4)
        XCTAssertEqual(c.doubles("train.betas"), [0.9, 0.999])
        XCTAssertEqual(c.double("train.weight_decay"), 0.05)
        XCTAssertEqual(c.double("train.warmup_epochs"), 2.5)
        XCTAssertEqual(c.strings("train.no_decay_keys"),
                       ["class_embedding", "positional_embedding", "ln_1", "ln_2", "ln_pre", "ln_post"])
        XCTAssertEqual(c.doubles("data.mean"), [122.769, 116.74, 104.04])
        XCTAssertEqual(c.doubles("data.std"), [68.493, 66.63, 70.321])
        XCTAssertEqual(c.int("train.batch_size"), 64)
        XCTAssertEqual(c.int("train.micro_batch"), 8)
        XCTAssertEqual(c.double("dist.bucket_mb"), 25)
        XCTAssertFalse(c.bool("profile"))
        XCTAssertEqual(c.string("model.pretrained"), "")
        XCTAssertEqual(c.double("model.width"), 768, "double() reads integer keys too")
    }

    func testSchemaIsWellFormed() {
        XCTAssertEqual(Set(ConfigSchema.keys.map(\.name)).count, ConfigSchema.keys.count, "duplicate key")
        for key in ConfigSchema.keys {
            XCTAssertFalse(key.doc.isEmpty, key.name)
            XCTAssertTrue(key.name.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "." || $0 == "_" }, key.name)
            // Every default is itself a valid value (type, bounds, choices, list length).
            var c = Config()
            XCTAssertNoThrow(try c.set(key.name, key.defaultValue), key.name)
        }
    }

    // MARK: files

    func testNestedAndDottedKeysAndNumberSpellings() throws {
        let path = write("exp.yaml", """
        model:
          width: 64
          adapters: [spatial]
          drop_path_rate: 0      # an integer for a float key
        train.lr: 3e-4           # YAML 1.1 would read this as a string
        train:
          betas: [0.5, 0.75]
          epochs: 3
        data:
          mean: [1, 2.5, 3]
          root: /videos/k400
        model.pretrained:        # empty = no weights
        profile: true
        """)
        let c = try Config.load(path: path)
        XCTAssertEqual(c.name, "exp")
        XCTAssertEqual(c.int("model.width"), 64)
        XCTAssertEqual(c.strings("model.adapters"), ["spatial"])
        XCTAssertEqual(c.double("model.drop_path_rate"), 0)
        XCTAssertEqual(c.double("train.lr"), 3e-4)
        XCTAssertEqual(c.doubles("train.betas"), [0.5, 0.75])
        XCTAssertEqual(c.int("train.epochs"), 3)
        XCTAssertEqual(c.doubles("data.mean"), [1, 2.5, 3])
        XCTAssertEqual(c.string("data.root"), "/videos/k400")
        XCTAssertEqual(c.string("model.pretrained"), "")
        XCTAssertTrue(c.bool("profile"))
        XCTAssertEqual(c.int("model.layers"), 12, "unset keys keep defaults")
    }

    func testInheritanceChainAndPrecedence() throws {
        write("_base_/model.yaml", "model: {width: 128, layers: 2, heads: 4}\ntrain.lr: 0.1\n")
        write("_base_/data.yaml", "data: {clip_len: 4}\nmodel.layers: 3\n")
        write("mid.yaml", "base: [_base_/model.yaml, _base_/data.yaml]\nmodel.width: 96\n")
        let child = write("child.yaml", "base: mid.yaml\ntrain:\n  lr: 0.01\n")
        let c = try Config.load(path: child, overrides: ["train.lr=0.5"])
        XCTAssertEqual(c.name, "child")
        XCTAssertEqual(c.int("model.width"), 96, "child of the base overrides it")
        XCTAssertEqual(c.int("model.layers"), 3, "a later base overrides an earlier one")
        XCTAssertEqual(c.int("model.heads"), 4)
        XCTAssertEqual(c.int("data.clip_len"), 4)
        XCTAssertEqual(c.double("train.lr"), 0.5, "--set overrides the file")
        // The base path is relative to the file that names it, not to the working directory.
        try FileManager.default.createDirectory(atPath: dir + "/exp", withIntermediateDirectories: true)
        let nested = write("exp/deep.yaml", "base: ../_base_/model.yaml\n")
        XCTAssertEqual(try Config.load(path: nested).int("model.width"), 128)
    }

    func testInheritanceCyclesAndMissingBases() {
        write("a.yaml", "base: b.yaml\nmodel.width: 1\n")
        write("b.yaml", "base: c.yaml\n")
        write("c.yaml", "base: a.yaml\n")
        assertFails(dir + "/a.yaml", ["cycle", "a.yaml -> b.yaml -> c.yaml -> a.yaml", "base"])
        let selfish = write("self.yaml", "base: self.yaml\n")
        assertFails(selfish, ["cycle", "self.yaml -> self.yaml"])
        let orphan = write("orphan.yaml", "base: _base_/nowhere.yaml\n")
        assertFails(orphan, [orphan, "base", "_base_/nowhere.yaml", "does not exist"])
        let badBase = write("badbase.yaml", "base: {x: 1}\n")
        assertFails(badBase, [badBase, "base", "expected a path"])
    }

    func testErrorsInABaseNameTheBaseFile() {
        let base = write("_base_/broken.yaml", "model:\n  heads: twelve\n")
        let child = write("uses_broken.yaml", "base: _base_/broken.yaml\n")
        assertFails(child, [base, ":2", "model.heads", "expected an integer", "'twelve'"])
    }

    func testUnknownKeysWithSuggestions() {
        let path = write("typos.yaml", """
        model:
          widht: 64
          lr: 0.1
        trian:
          epochs: 3
        data.flip: 0.5
        """)
        assertFails(path, [
            path,
            "model.widht: unknown key (did you mean 'model.width'?)",
            "model.lr: unknown key (did you mean 'train.lr'?)",
            "trian: unknown key",
            "data.flip: unknown key (did you mean 'data.flip_ratio'?)",
            "4 config errors",
        ])
        // A known section given a scalar is an unknown key, not a crash.
        assertFails(write("scalar_section.yaml", "model: 5\n"), ["model: unknown key"])
    }

    func testWrongTypesBadChoicesAndRanges() {
        let cases: [(String, [String])] = [
            ("model.width: 7.5", ["model.width", "expected an integer", "'7.5'"]),
            ("model.width: '64'", ["model.width", "quoted string \"64\""]),
            ("model.width: [64]", ["model.width", "got a list"]),
            ("model: {width: {a: 1}}", ["model.width", "got a mapping"]),
            ("profile: yes", ["profile", "expected a boolean", "'yes'"]),
            ("train.lr: fast", ["train.lr", "expected a number"]),
            ("train.lr: .nan", ["train.lr", "expected a number"]),
            ("model.backbone: clpi", ["model.backbone", "one of clip | imagenet | timesformer", "did you mean 'clip'"]),
            ("model.backbone:", ["model.backbone", "null"]),
            ("model.adapters: [temporal, spacial]", ["model.adapters", "'spacial'", "did you mean 'spatial'"]),
            ("model.adapters: [joint, joint]", ["model.adapters", "listed twice"]),
            ("model.adapters: temporal", ["model.adapters", "write a list"]),
            ("model.adapter_layers: middle", ["model.adapter_layers", "all | bottom6 | top6 | skip"]),
            ("model.tune: everything", ["model.tune", "adapters | all | head"]),
            ("data.test_crop: ten", ["data.test_crop", "center | three"]),
            ("data.format: csv", ["data.format", "list | kinetics_csv | ssv2_json | diving48_json"]),
            ("data.flip_ratio: 1.5", ["data.flip_ratio", "above the maximum 1"]),
            ("model.layers: 0", ["model.layers", "below the minimum 1"]),
            ("model.num_tadapter: 3", ["model.num_tadapter", "above the maximum 2"]),
            ("data.mean: [1, 2]", ["data.mean", "exactly 3 numbers"]),
            ("data.std: [1, 0, 1]", ["data.std", "below the minimum"]),
            ("train.betas: [0.9, x]", ["train.betas", "'x' is not a number"]),
            ("train.no_decay_keys: [ln_1, [x]]", ["train.no_decay_keys", "an element is a list"]),
            ("data.root: [a, b]", ["data.root", "expected a string"]),
        ]
        for (i, (yaml, fragments)) in cases.enumerated() {
            let path = write("bad\(i).yaml", yaml + "\n")
            assertFails(path, [path + ":1"] + fragments)
        }
    }

    func testMalformedFiles() {
        let invalid = write("invalid.yaml", "model:\n  width: [1, 2\n")
        assertFails(invalid, [invalid, "invalid YAML"])
        let list = write("list.yaml", "- model.width\n")
        assertFails(list, [list, "top level must be a mapping"])
        assertFails(dir + "/missing.yaml", [dir + "/missing.yaml", "cannot read"])
        let twice = write("twice.yaml", "model:\n  width: 1\nmodel.width: 2\n")
        assertFails(twice, [twice + ":3", "model.width", "set twice", "line 2"])
    }

    /// An integer list (Swin's depths, windows, patch) takes `2.0` as 2, as a dump writes it,
    /// but a fraction is an error: `2.5` must not become a window of 2 without a word.
    func testIntegerListsTakeWholeNumbersOnly() throws {
        let whole = try Config.load(path: write("whole.yaml", "model.window_size: [8.0, 7, 7]\n"),
                                    overrides: ["model.depths=[2, 2.0, 18, 2]"])
        XCTAssertEqual(whole.doubles("model.window_size"), [8, 7, 7])
        XCTAssertEqual(whole.doubles("model.depths"), [2, 2, 18, 2])
        assertFails(write("frac.yaml", "model.window_size: [8, 7.5, 7]\n"), ["model.window_size", "'7.5'"])
        assertFails(write("plain.yaml", "{}\n"), overrides: ["model.patch_size=[2, 4.5, 4]"], ["model.patch_size", "'4.5'"])
        assertFails(write("scalar.yaml", "model.patch_size: 14.2\n"), ["model.patch_size", "'14.2'"])
    }

    // MARK: --set

    func testOverridesAreTypedByTheSchema() throws {
        let path = write("plain.yaml", "{}\n")
        let c = try Config.load(path: path, overrides: [
            "model.width=64", "model.adapter_scale=1", "train.lr=1e-3", "train.betas=[0.8, 0.9]",
            "model.adapters=[]", "model.divided_space_time=true", "profile=false",
            "data.root=/data/k400: videos #1", "data.train=a=b.txt", "model.pretrained=",
            "data.val='/quoted path'", "train.no_decay_keys=[ln_post, head]", " threads = 2",
        ])
        XCTAssertEqual(c.int("model.width"), 64)
        XCTAssertEqual(c.double("model.adapter_scale"), 1)
        XCTAssertEqual(c.double("train.lr"), 1e-3)
        XCTAssertEqual(c.doubles("train.betas"), [0.8, 0.9])
        XCTAssertEqual(c.strings("model.adapters"), [])
        XCTAssertTrue(c.bool("model.divided_space_time"))
        XCTAssertFalse(c.bool("profile"))
        XCTAssertEqual(c.string("data.root"), "/data/k400: videos #1", "string values are taken verbatim")
        XCTAssertEqual(c.string("data.train"), "a=b.txt", "only the first = splits")
        XCTAssertEqual(c.string("model.pretrained"), "")
        XCTAssertEqual(c.string("data.val"), "/quoted path")
        XCTAssertEqual(c.strings("train.no_decay_keys"), ["ln_post", "head"])
        XCTAssertEqual(c.int("threads"), 2)
    }

    func testOverrideErrorsNameTheKey() {
        let path = write("plain.yaml", "{}\n")
        assertFails(path, overrides: ["model.widht=3"], ["--set", "model.widht", "unknown key", "did you mean 'model.width'"])
        assertFails(path, overrides: ["model.width=wide"], ["--set", "model.width", "expected an integer"])
        assertFails(path, overrides: ["model.width=1.5"], ["model.width", "expected an integer"])
        assertFails(path, overrides: ["profile=1"], ["profile", "expected a boolean"])
        assertFails(path, overrides: ["data.mean=[1,2,3"], ["data.mean", "cannot parse"])
        assertFails(path, overrides: ["model.adapters=[time]"], ["model.adapters", "'time'"])
        assertFails(path, overrides: ["model.width"], ["--set \"model.width\": no '='", "key=value"])
        assertFails(path, overrides: ["a=1", "b=2"], ["--set: a: unknown key", "--set: b: unknown key", "2 config errors"])
    }

    func testSetFromSwiftValues() throws {
        var c = Config()
        try c.set("model.width", .int(32))
        try c.set("train.lr", .int(1))          // an integer is a valid float
        try c.set("model.adapters", .strings(["joint"]))
        XCTAssertEqual(c.int("model.width"), 32)
        XCTAssertEqual(c.value("train.lr"), .float(1))
        XCTAssertEqual(c.strings("model.adapters"), ["joint"])
        XCTAssertThrowsError(try c.set("model.width", .float(1.5))) { XCTAssertTrue("\($0)".contains("model.width")) }
        XCTAssertThrowsError(try c.set("model.tune", .string("most"))) { XCTAssertTrue("\($0)".contains("adapters | all | head")) }
        XCTAssertThrowsError(try c.set("nope", .int(1))) { XCTAssertTrue("\($0)".contains("nope: unknown key")) }
    }

    // MARK: bad input (a fuzzing run's findings): a clear error, never a crash, a hang or silent acceptance

    /// Asserts loading fails for another reason than nesting: the text got past the depth check.
    func assertParsed(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Config.load(path: path), file: file, line: line) { e in
            XCTAssertFalse("\(e)".contains("nested"), "\(e)", file: file, line: line)
        }
    }

    /// Yams builds its tree recursively: documents this deep overflowed the stack (SIGSEGV).
    func testDeepNestingIsRefusedBeforeParsing() {
        func deep(_ open: String, _ n: Int, _ inner: String = "1") -> String {
            String(repeating: open, count: n) + inner + String(repeating: open == "[" ? "]" : "}", count: n)
        }
        let flow = write("flow.yaml", "x: " + deep("[", 5000, "") + "\n")
        assertFails(flow, [flow + ":1", "brackets ([ or {) nested more than 64 deep"])
        let maps = write("maps.yaml", "model:\n  width: " + deep("{a: ", 50_000) + "\n")
        assertFails(maps, [maps + ":2", "nested more than 64 deep"])
        // 20,000 block levels on one line (nested sequences), and mappings indented one column more each line.
        let dashes = write("dashes.yaml", "x:\n" + String(repeating: "- ", count: 20_000) + "1\n")
        assertFails(dashes, [dashes + ":2", "nested too deeply", "add up to 20000"])
        let blocks = write("blocks.yaml", (0..<1000).map { String(repeating: " ", count: $0) + "a:" }.joined(separator: "\n") + " 1\n")
        assertFails(blocks, [blocks + ":129", "nested too deeply", "add up to 129, more than 128"])
        // Up to the bounds the text goes on to the parser (and the schema judges the value).
        assertParsed(write("flow64.yaml", "model.depths: " + deep("[", 64) + "\n"))
        assertFails(write("flow65.yaml", "model.depths: " + deep("[", 65) + "\n"), ["nested more than 64 deep"])
        assertParsed(write("blocks128.yaml", (0..<128).map { String(repeating: " ", count: $0) + "a:" }.joined(separator: "\n") + " 1\n"))
        // Brackets in strings and comments are not structure: many strings with one bracket each load.
        let strings = (0..<100).map { _ in #""[a""# }.joined(separator: ", ")
        let quoted = write("quoted.yaml", """
        data.root: "\(String(repeating: "[", count: 60))"   # [[[[ {{{{ in a comment
        data.train: 'it''s {\(String(repeating: "{", count: 60))'
        model.adapters: [temporal]  # ]]]] closing brackets in a comment
        train.no_decay_keys: [\(strings), "]", ']]', "\\"["]
        """)
        XCTAssertNoThrow(try Config.load(path: quoted))
        let c = try? Config.load(path: quoted)
        XCTAssertEqual(c?.string("data.root"), String(repeating: "[", count: 60))
        XCTAssertEqual(c?.strings("train.no_decay_keys").count, 103)
        // ... but closing brackets in strings do not hide nesting, nor does a quote in a block scalar.
        let hidden = write("hidden.yaml", "x: " + String(repeating: #"["]", "#, count: 5000) + "\n")
        assertFails(hidden, [hidden + ":1", "nested more than 64 deep"])
        let literal = write("literal.yaml", "x: |\n  it's text\ny: " + deep("[", 5000) + "\n")
        assertFails(literal, [literal + ":3", "nested more than 64 deep"])
        let document = write("document.yaml", "--- " + deep("[", 5000) + "\n")
        assertFails(document, [document + ":1", "nested more than 64 deep"])
        // --set values and checkpoint dumps go through the same parser.
        assertFails(write("plain.yaml", "{}\n"), overrides: ["model.depths=" + deep("[", 5000)], ["--set", "model.depths", "nested more than 64 deep"])
        XCTAssertThrowsError(try Config(dump: "{\"model.depths\": " + deep("[", 50_000) + "}")) {
            XCTAssertTrue("\($0)".contains("<dump>:1") && "\($0)".contains("nested more than 64 deep"), "\($0)")
        }
    }

    /// A 10 MB config of 900,000 unknown keys took minutes: a "did you mean" per key, a line per key.
    func testHugeFilesAndFloodsOfUnknownKeysAreBounded() throws {
        let start = Date()
        let huge = write("huge.yaml", String(repeating: "unknown_key: 1\n", count: 700_000))
        assertFails(huge, [huge, "a config is at most 1 MiB; this file is 10.1 MiB (10500000 bytes)"])
        // Under the size bound: the first 20 unknown keys listed (with suggestions), the rest counted.
        let keys = 50_000
        let flood = write("flood.yaml", (0..<keys).map { "model.widht\($0): 1\n" }.joined())
        XCTAssertThrowsError(try Config.load(path: flood)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.hasPrefix("\(keys) config errors, the first 20 listed:\n"), text)
            XCTAssertTrue(text.contains("\(flood):1: model.widht0: unknown key"), text)
            XCTAssertTrue(text.contains("\(flood):20: model.widht19: unknown key"), text)
            XCTAssertFalse(text.contains("model.widht20:"), text)
            XCTAssertTrue(text.hasSuffix("\n  … and \(keys - 20) more in \(flood)"), text)
            XCTAssertEqual(text.components(separatedBy: "unknown key").count - 1, 20)
        }
        let overrides = (0..<1000).map { "nope\($0)=1" }
        assertFails(write("plain.yaml", "{}\n"), overrides: overrides,
                    ["1000 config errors, the first 20 listed", "--set: nope19: unknown key", "… and 980 more in --set"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 60, "bounded work, not a suggestion per key")
    }

    func testBaseSetTwiceIsAnError() {
        write("_base_/a.yaml", "model.width: 1\n")
        write("_base_/b.yaml", "model.width: 2\n")
        let twice = write("twice_base.yaml", "base: _base_/a.yaml\nmodel.layers: 2\nbase: [_base_/b.yaml]\n")
        assertFails(twice, [twice + ":3", "base", "set twice in this file (first at line 1)"])
    }

    /// A tag is never executed nor silently dropped: it names a type of another tool.
    func testExplicitTagsAreRefused() throws {
        write("_base_/a.yaml", "model.width: 1\n")
        let cases: [(String, [String])] = [
            ("model.width: !!str 64", ["model.width", "'!!str'"]),
            ("model.width: !!python/object:os.system 64", ["model.width", "'!!python/object:os.system'"]),
            ("model.width: !custom 64", ["model.width", "'!custom'"]),
            ("model.width: ! 64", ["model.width", "'!'"]),
            ("model.width: !<tag:yaml.org,2002:int> 64", ["model.width", "'!!int'"]),
            ("data.root: !!str \"/videos\"", ["data.root", "'!!str'"]),
            ("model.adapters: !!seq [joint]", ["model.adapters", "'!!seq'"]),
            ("model.adapters: ! [joint]", ["model.adapters", "'!'"]),
            ("model.adapters: [joint, !!str spatial]", ["model.adapters", "'!!str'"]),
            ("model: !!map {width: 64}", ["model", "'!!map'"]),
            ("!!str model.width: 64", ["model.width", "'!!str'"]),
            ("base: !!str _base_/a.yaml", ["base", "'!!str'"]),
            ("data.root: &root !!str \"/videos\"", ["data.root", "'!!str'"]),
            ("model: {!!str \"width\": 64}", ["model.width", "'!!str'"]),
            ("data.root: !!str\n  \"/videos\"", ["data.root", "'!!str'"]),
        ]
        for (i, (yaml, fragments)) in cases.enumerated() {
            let path = write("tag\(i).yaml", yaml + "\n")
            assertFails(path, [path + ":1", "explicit YAML tag"] + fragments)
        }
        // An exclamation mark inside a value or a comment is no tag.
        let bang = write("bang.yaml", "data.root: /videos/wow!\ndata.train: a !b\ndata.val: 'x !!str'\n# !!python/object\n")
        let c = try Config.load(path: bang)
        XCTAssertEqual([c.string("data.root"), c.string("data.train"), c.string("data.val")], ["/videos/wow!", "a !b", "x !!str"])
        assertFails(write("plain.yaml", "{}\n"), overrides: ["model.width=!!int 64"], ["--set", "model.width", "'!!int'"])
    }

    func testEmptyAndNonRegularFilesAreRefused() throws {
        for (name, text) in [("empty.yaml", ""), ("comments.yaml", "# nothing\n\n   # at all\n"), ("blank.yaml", "\n  \n")] {
            let path = write(name, text)
            assertFails(path, [path + ": the file is empty: a config states at least its base or a key"])
        }
        let base = write("_base_/todo.yaml", "# to do\n")
        assertFails(write("child.yaml", "base: _base_/todo.yaml\n"), [base, "is empty"])
        // `{}` says "nothing changes" on purpose (a config of --set overrides only).
        XCTAssertEqual(try Config.load(path: write("nothing.yaml", "{}\n")).values, Config().values)
        // Refused before reading: a FIFO would block the reader, a device or directory is no config.
        assertFails("/dev/null", ["/dev/null: not a regular file (a character device)"])
        assertFails(dir + "/_base_", [dir + "/_base_: not a regular file (a directory)"])
        let fifo = dir + "/fifo.yaml"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        assertFails(fifo, [fifo + ": not a regular file (a FIFO)"])
        assertFails(write("via_fifo.yaml", "base: fifo.yaml\n"), [fifo, "not a regular file"])
        // A symbolic link to a config is followed.
        let target = write("target.yaml", "model.width: 32\n")
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.yaml", withDestinationPath: target)
        XCTAssertEqual(try Config.load(path: dir + "/link.yaml").int("model.width"), 32)
    }

    func testOverridesWithoutAKeyOrAnEqualsSign() {
        let path = write("plain.yaml", "{}\n")
        assertFails(path, overrides: ["=v"], ["--set \"=v\": no key before '='"])
        assertFails(path, overrides: [" = v"], ["--set \" = v\": no key before '='"])
        assertFails(path, overrides: ["model.width"], ["--set \"model.width\": no '='; write key=value (e.g. model.width=768)"])
        assertFails(path, overrides: ["model.widht"], ["--set \"model.widht\": no '='; write key=value"])
        assertFails(path, overrides: [""], ["--set \"\": no '='; write key=value"])
    }

    // MARK: dump

    func testDumpRebuildsTheSameConfig() throws {
        let path = write("rich.yaml", """
        model: {width: 64, adapters: [temporal, joint], adapter_scale: 0.3333333333333333}
        data: {root: "tab\\there \\"quoted\\" ünï/cödé\\\\", mean: [1.0e-9, 2, 3e+5]}
        train: {lr: 1.0e-8, no_decay_keys: []}
        """)
        let original = try Config.load(path: path, overrides: ["profile=true"])
        let text = original.dump()
        let rebuilt = try Config(dump: text)
        XCTAssertEqual(rebuilt, original)
        XCTAssertEqual(rebuilt.name, "rich")
        XCTAssertEqual(rebuilt.values, original.values)
        XCTAssertEqual(rebuilt.string("data.root"), "tab\there \"quoted\" ünï/cödé\\")
        XCTAssertEqual(rebuilt.dump(), text, "the dump is canonical")
        // It is JSON, one key per line, sorted, with the name first.
        let json = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        XCTAssertEqual(json?.count, ConfigSchema.keys.count + 1)
        XCTAssertEqual(json?["model.width"] as? Int, 64)
        let keys = text.split(separator: "\n").dropFirst(2).dropLast().map { $0.split(separator: "\"")[1] }
        XCTAssertEqual(keys, keys.sorted())
        XCTAssertTrue(text.hasPrefix("{\n  \"name\": \"rich\",\n"))
    }

    func testDumpFromAnOlderVersionAndBadDumps() throws {
        let partial = try Config(dump: "{\"name\": \"old\", \"model.width\": 32}")
        XCTAssertEqual(partial.name, "old")
        XCTAssertEqual(partial.int("model.width"), 32)
        XCTAssertEqual(partial.int("model.layers"), 12, "keys missing from an older dump take defaults")
        XCTAssertThrowsError(try Config(dump: "{\"model.removed_key\": 1}")) { XCTAssertTrue("\($0)".contains("<dump>:1: model.removed_key: unknown key"), "\($0)") }
        XCTAssertThrowsError(try Config(dump: "[1]")) { XCTAssertTrue("\($0)".contains("JSON object")) }
        XCTAssertThrowsError(try Config(dump: "{\"model.width\": \"64\"}")) { XCTAssertTrue("\($0)".contains("model.width")) }
    }
}
