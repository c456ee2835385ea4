// Values that are each valid alone but do not fit together. Checked by the tools that feed data
// to a model (aim-train, aim-eval) right after loading, so a pipeline no clip can pass or a model
// no clip fits is refused before any data is opened, with the keys named, instead of failing on
// every video later. (aim-model and the report read model keys only and skip the data relations.)

extension Config {
    /// Throws every relation that does not hold at once.
    public func checkRelations() throws {
        let problems = relationProblems()
        if !problems.isEmpty { throw ConfigError(problems) }
    }

    /// Every relation that does not hold, each naming its keys and values.
    public func relationProblems() -> [ConfigProblem] {
        var out: [ConfigProblem] = []
        func problem(_ key: String, _ message: String) { out.append(ConfigProblem(file: source, key: key, message: message)) }
        let crop = int("data.crop_size"), res = int("model.input_resolution")
        if crop != res {
            problem("data.crop_size", "\(crop) must equal model.input_resolution \(res): the backbone's positional embedding is for \(res)x\(res) frames")
        }
        let short = int("data.short_side")
        if short < crop {
            problem("data.short_side", "\(short) is smaller than data.crop_size \(crop): the validation center crop needs a short side of at least \(crop)")
        }
        let testShort = int("data.test_short_side")
        if string("data.test_crop") == "three" {
            if testShort != crop {
                problem("data.test_short_side", "\(testShort) must equal data.crop_size \(crop) with data.test_crop three (ThreeCrop slides a \(crop) square along the long side)")
            }
        } else if testShort < crop {
            problem("data.test_short_side", "\(testShort) is smaller than data.crop_size \(crop): the test crop needs a short side of at least \(crop)")
        }
        let clipLen = int("data.clip_len"), frames = int("model.num_frames")
        if clipLen != frames {
            problem("data.clip_len", "\(clipLen) must equal model.num_frames \(frames): each clip is one input of the model")
        }
        // The official frame_uniform sampler takes one clip spanning the whole video; more clips
        // would be silently one (aim-eval's --views refuses them the same way).
        if bool("data.frame_uniform") {
            for key in ["data.num_clips", "data.val_num_clips", "data.test_num_clips"] where int(key) > 1 {
                problem(key, "\(int(key)) with data.frame_uniform true: frame_uniform samples one clip per video; set \(key)=1 (and data.test_crop three for 3 views) or data.frame_uniform=false")
            }
        }
        // Read by the two formats whose annotations name classes; elsewhere it was silently unused.
        let format = string("data.format")
        // (Shards carry the labels they were written with; a CSV config switched to them keeps its key.)
        if !string("data.class_list").isEmpty && ["list", "diving48_json"].contains(format) {
            problem("data.class_list", "is read by data.format kinetics_csv and ssv2_json only, not \(format) (whose labels are numbers): name the classes with data.classes")
        }
        return out
    }
}
