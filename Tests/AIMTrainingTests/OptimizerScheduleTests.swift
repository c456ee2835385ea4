import AIMConfig
import AIMModel
import AIMTensor
import AIMTraining
import Foundation
import XCTest

/// The learning-rate schedule and the per-parameter rules, against mmcv's definitions worked by
/// hand: `CosineAnnealing` lr = min + (base - min)·(1 + cos(π·t/T))/2, linear warmup
/// lr·(1 - (1 - t/W)·(1 - warmup_ratio)), and `paramwise_cfg.custom_keys` (longest key first).
final class OptimizerScheduleTests: XCTestCase {
    func testCosineScheduleWithLinearWarmupHasMMCVValues() {
        let s = LearningRateSchedule(baseLR: 0.01, totalSteps: 100, warmupSteps: 10)
        // Step 0: warmup_ratio (0.1) of the cosine value, which is still the base lr.
        XCTAssertEqual(s.lr(at: 0), 0.001, accuracy: 1e-12)
        // Halfway through warmup: (1 - 0.5·0.9) = 0.55 of 0.005·(1 + cos(0.05π)) = 0.0099384417.
        XCTAssertEqual(s.lr(at: 5), 0.00546614293663663, accuracy: 1e-12)
        // Warmup over: the plain cosine, 0.005·(1 + cos(0.1π)).
        XCTAssertEqual(s.lr(at: 10), 0.009755282581475769, accuracy: 1e-12)
        // Half the run: half the base lr; the end: min_lr (0), and it stays there.
        XCTAssertEqual(s.lr(at: 50), 0.005, accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 99), 2.467198171342e-06, accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 100), 0, accuracy: 1e-15)
        XCTAssertEqual(s.lr(at: 150), 0, accuracy: 1e-15)
        // Warmup rises monotonically to meet the cosine.
        let warm = (0...10).map { s.lr(at: $0) }
        XCTAssertEqual(warm, warm.sorted())

        let floor = LearningRateSchedule(baseLR: 0.01, totalSteps: 100, warmupSteps: 0, minLR: 0.001)
        XCTAssertEqual(floor.lr(at: 0), 0.01, accuracy: 1e-12)
        XCTAssertEqual(floor.lr(at: 50), 0.0055, accuracy: 1e-12)
        XCTAssertEqual(floor.lr(at: 100), 0.001, accuracy: 1e-12)
    }

    /// `train.lr_by_epoch`: mmcv's default `by_epoch=True`, as the official configs run. The
    /// cosine is set before each epoch from epoch/max_epochs; warmup (2.5 epochs = 10 steps of 4)
    /// scales that epoch's value step by step; step 10 == warmup_iters gets the regular lr.
    func testCosinePerEpochHasMMCVByEpochValues() {
        let s = LearningRateSchedule(baseLR: 0.01, totalSteps: 40, warmupSteps: 10, stepsPerEpoch: 4)
        func regular(_ epoch: Double) -> Double { 0.005 * (1 + cos(Double.pi * epoch / 10)) }
        XCTAssertEqual(s.lr(at: 0), 0.001, accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 3), 0.01 * (1 - 0.7 * 0.9), accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 5), regular(1) * (1 - 0.5 * 0.9), accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 10), regular(2), accuracy: 1e-12)
        XCTAssertEqual(s.lr(at: 11), regular(2), accuracy: 1e-12)
        for step in 12..<16 { XCTAssertEqual(s.lr(at: step), regular(3), accuracy: 1e-12, "constant over epoch 3") }
        // The last epoch stays above 0: mmcv reaches min_lr only at epoch == max_epochs.
        XCTAssertEqual(s.lr(at: 39), regular(9), accuracy: 1e-12)
        XCTAssertEqual(regular(9), 0.000244717418524232, accuracy: 1e-15)

        // 2.5 epochs of 5 steps: warmup_iters 12.5 is never equalled, so after step 12 mmcv sets
        // nothing until the next epoch and step 12's warmup lr stays for steps 13 and 14.
        let f = LearningRateSchedule(baseLR: 0.01, totalSteps: 50, warmupSteps: 12.5, stepsPerEpoch: 5)
        let last = regular(2) * (1 - (1 - 12 / 12.5) * 0.9)
        for step in 12..<15 { XCTAssertEqual(f.lr(at: step), last, accuracy: 1e-12, "step \(step)") }
        XCTAssertEqual(f.lr(at: 15), regular(3), accuracy: 1e-12)

        // Per step (by_epoch=False) the same fractional warmup ends after step 12.
        let p = LearningRateSchedule(baseLR: 0.01, totalSteps: 50, warmupSteps: 12.5)
        XCTAssertEqual(p.lr(at: 12), 0.005 * (1 + cos(Double.pi * 0.24)) * (1 - 0.04 * 0.9), accuracy: 1e-12)
        XCTAssertEqual(p.lr(at: 13), 0.005 * (1 + cos(Double.pi * 0.26)), accuracy: 1e-12)
    }

    func testLongestKeyWinsAsInMMCV() {
        // AIM ViT-L/14 K400: backbone lr × 0.1, which (the longer key) overrides ln_post's no-decay.
        let rules = ParamwiseRule.official(noDecayKeys: ["ln_post", "bias"], backboneLRMult: 0.1)
        XCTAssertEqual(ParamwiseRule.match("backbone.ln_post.weight", rules)?.key, "backbone")
        XCTAssertEqual(ParamwiseRule.match("backbone.ln_post.weight", rules)?.lrMult, 0.1)
        XCTAssertEqual(ParamwiseRule.match("backbone.ln_post.weight", rules)?.decayMult, 1)
        XCTAssertEqual(ParamwiseRule.match("cls_head.fc_cls.bias", rules)?.decayMult, 0)
        XCTAssertEqual(ParamwiseRule.match("head.ln_post.weight", rules)?.key, "ln_post")
        XCTAssertNil(ParamwiseRule.match("cls_head.fc_cls.weight", rules))
    }

    func testNoDecayKeysGetNoWeightDecay() throws {
        var c = ModelConfig()
        c.inputResolution = 16; c.patchSize = 8; c.width = 32; c.layers = 2; c.heads = 4; c.numFrames = 2; c.numClasses = 4
        c.tune = .all; c.adapters = []
        let model = try Recognizer(config: c, seed: 1)
        let keys = ConfigSchema.officialNoDecayKeys
        let opt = AdamWOptimizer(store: model.store, weightDecay: 0.05, rules: ParamwiseRule.official(noDecayKeys: keys, backboneLRMult: 1))
        var exempt = 0, decayed = 0
        for g in opt.groups {
            let noDecay = keys.contains { g.parameter.name.contains($0) }
            XCTAssertEqual(g.weightDecay, noDecay ? 0 : 0.05, g.parameter.name)
            XCTAssertEqual(g.lrMult, 1, g.parameter.name)
            if noDecay { exempt += 1 } else { decayed += 1 }
        }
        XCTAssertGreaterThan(exempt, 0); XCTAssertGreaterThan(decayed, 0)
    }
}
