// Every config key the project knows, with its type, default and meaning: the one place the
// keys are documented. Names follow mmaction2 / the official AIM configs where one exists.
// Defaults are the official K400 ViT-B/16 CLIP 8-frame setting (configs/recognition/vit/
// vitclip_base_k400.py at its 8-frame commit), so a config only states what differs.

public enum ConfigSchema {
    /// The official no-weight-decay keys (paramwise `custom_keys` with `decay_mult=0`).
    public static let officialNoDecayKeys = ["class_embedding", "positional_embedding", "ln_1", "ln_2", "ln_pre", "ln_post"]
    /// CLIP's pixel statistics ×255, RGB (the official CLIP configs' img_norm_cfg).
    public static let clipMean = [122.769, 116.74, 104.04]
    public static let clipStd = [68.493, 66.63, 70.321]

    public static let keys: [ConfigKey] = [
        // MARK: model (issue 3)
        .choice("model.backbone", ["clip", "imagenet", "timesformer", "swin2d", "videoswin"], "clip",
                "clip: OpenAI CLIP ViT (vit_clip.py); imagenet: timm IN-21K ViT (vit_imagenet.py); timesformer: the CLIP divided space-time baseline (timesformer.py); "
                + "swin2d: AIM on Swin (swin2d_adapter.py, SwinTransformer2D_Adapter); videoswin: the full-finetuning Video Swin (swin_transformer.py, SwinTransformer3D)"),
        .int("model.input_resolution", 224, "input frame side in pixels (crop size fed to the backbone)", min: 1, max: 4096),
        .ints("model.patch_size", [16], "ViT: patch side in pixels (16 for ViT-B/16, 14 for ViT-L/14); swin2d / videoswin: the Conv3d patch [t, h, w] ([2, 4, 4])", min: 1, max: 1024),
        .int("model.embed_dim", 128, "swin2d / videoswin: width of stage 1 (doubles at every patch merging; 128 Swin-B)", min: 1, max: 16384),
        .ints("model.depths", [2, 2, 18, 2], "swin2d / videoswin: blocks per stage (Swin-B [2, 2, 18, 2])", min: 1, max: 1024),
        .ints("model.num_heads", [4, 8, 16, 32], "swin2d / videoswin: attention heads per stage, one per entry of model.depths", min: 1, max: 1024),
        .ints("model.window_size", [7], "swin2d: the square window side (7); videoswin: the 3D window [t, h, w] ([8, 7, 7]), grids not a window multiple zero-padded; clipped to the token grid as the official code", min: 1, max: 1024),
        .int("model.width", 768, "token width D (768 ViT-B, 1024 ViT-L)", min: 1, max: 16384),
        .int("model.layers", 12, "number of transformer blocks (12 ViT-B, 24 ViT-L)", min: 1, max: 1024),
        .int("model.heads", 12, "attention heads per block (12 ViT-B, 16 ViT-L)", min: 1, max: 1024),
        .float("model.mlp_ratio", 4, "MLP hidden width / D", min: 0, max: 64),
        .int("model.num_frames", 8, "frames per clip seen by the model (temporal_embedding length)", min: 1, max: 1024),
        .int("model.num_classes", 400, "classes of the cls_head.fc_cls layer", min: 1, max: 1_000_000),
        .choices("model.adapters", ["temporal", "spatial", "joint"], ["temporal", "spatial", "joint"],
                 "which adapters each adapted block has: temporal (T_Adapter), spatial (S_Adapter), joint (MLP_Adapter); [] = space-only"),
        .int("model.num_tadapter", 1, "temporal adapters per block: 2 adds T_Adapter_in before the temporal attention (official SSv2)", min: 1, max: 2),
        .float("model.adapter_scale", 0.5, "scale of the joint (MLP_Adapter) branch only (0.5 K400/K700/Diving48, 1 SSv2)", min: 0, max: 1000),
        .float("model.adapter_mlp_ratio", 0.25, "adapter bottleneck width / D", min: 0, max: 64),
        .choice("model.adapter_layers", ["all", "bottom6", "top6", "skip"], "all",
                "blocks that carry adapters: all, bottom6 (0-5), top6 (last 6), skip (even blocks 0, 2, 4, ...)"),
        .choice("model.tune", ["adapters", "all", "head"], "adapters",
                "tunable parameters: adapters = the official filter (names with Adapter, temporal_embedding, ln_post, cls_head); all = full finetuning; head = cls_head only"),
        .bool("model.divided_space_time", false, "with backbone imagenet: the IN-21K divided space-time TimeSformer (facebookresearch/TimeSformer)"),
        .float("model.drop_path_rate", 0.2, "stochastic depth, linearly increasing over blocks from 0 to this (temporal and joint branches)", min: 0, below: 1),
        .float("model.head_dropout", 0.5, "dropout before cls_head.fc_cls during training (I3DHead dropout_ratio)", min: 0, below: 1),
        .string("model.pretrained", "", "safetensors file of the pretrained image backbone (tools/export_pretrained.py); empty = random init"),
        .string("load_from", "", "starting weights of a new run, as mmaction2's load_from: an aim-swift checkpoint or a full weights file (tools/convert_checkpoint.py from-official); its tunable weights of matching name and shape are read (a head of another class count stays initialised), its frozen ones must equal model.pretrained's; step and optimizer start fresh, and --resume takes precedence"),
        .choice("model.precision", ["fp32", "bf16"], "fp32", "matrix products of the linear layers: fp32, or bf16 operands with fp32 accumulation and fp32 master weights (oneDNN; as torch.autocast bf16)"),

        // MARK: data (issue 4)
        .choice("data.format", ["list", "kinetics_csv", "ssv2_json", "diving48_json", "shards"], "list",
                "annotation format: list = mmaction2 video list '<relative path> <label>' per line; kinetics_csv, ssv2_json, diving48_json = the datasets' own annotation files; shards = tar shards in the WebDataset layout (aim-data shard), data.train/val/test naming them as DIR/train-{000000..000127}.tar or DIR/train-manifest.json"),
        .string("data.root", "", "directory the training annotation's video paths are relative to (mmaction2 data_root)"),
        .string("data.val_root", "", "directory data.val / data.test video paths are relative to (data_root_val); empty = data.root"),
        .string("data.train", "", "training annotation file; with data.format shards the shards: DIR/train-{000000..000127}.tar or DIR/train-manifest.json"),
        .string("data.val", "", "validation annotation file (evaluated during training); with data.format shards a shard pattern or manifest"),
        .string("data.test", "", "test annotation file for aim-eval; empty = data.val (the official configs test on val)"),
        .string("data.class_list", "", "class names file for the kinetics_csv (line order = label index) and ssv2_json (the dataset's labels.json) formats"),
        .string("data.classes", "", "label map naming each class for aim-predict / aim-eval (line i = name of label i, mmaction2 label_map_*.txt, or SSv2 labels.json); empty = data.class_list, else the names the training annotation gives (Kinetics CSV, SSv2 labels.json), else a checkpoint's own; none = labels print as numbers"),
        .int("data.clip_len", 8, "frames sampled per clip (SampleFrames clip_len)", min: 1, max: 1024),
        .int("data.frame_interval", 16, "temporal stride between sampled frames (ignored when data.frame_uniform)", min: 1, max: 100_000),
        .int("data.num_clips", 1, "clips per video in training", min: 1, max: 1000),
        .bool("data.frame_uniform", false, "uniform segment sampling (SSv2, Diving48): one frame from each of clip_len equal segments"),
        .int("data.test_num_clips", 3, "temporal clips per video at test time (views = clips x crops)", min: 1, max: 1000),
        .choice("data.test_crop", ["center", "three"], "center", "spatial test crops: center = CenterCrop (1 view), three = ThreeCrop (3 views)"),
        .int("data.val_num_clips", 1, "clips per video for validation during training (center crop)", min: 1, max: 1000),
        .int("data.short_side", 256, "short-side resize before cropping in training and validation", min: 1, max: 16384),
        .int("data.test_short_side", 224, "short-side resize before the test crops", min: 1, max: 16384),
        .int("data.crop_size", 224, "crop side in pixels (RandomResizedCrop output / test crop)", min: 1, max: 16384),
        .float("data.flip_ratio", 0.5, "probability of a horizontal flip in training", min: 0, max: 1),
        .bool("data.rand_augment", false, "RandAugment on training clips (official SSv2)"),
        .int("data.rand_augment_n", 4, "RandAugment: operations per clip", min: 0, max: 64),
        .int("data.rand_augment_m", 7, "RandAugment: magnitude (0-30 scale of imgaug)", min: 0, max: 30),
        .float("data.random_erasing", 0, "RandomErasing probability after normalisation (0.25 in official SSv2)", min: 0, max: 1),
        .bool("data.color_jitter", false, "ColorJitter after flip (official ViT-L/14 K400)"),
        .floats("data.mean", clipMean, "per-channel RGB mean on the 0-255 scale", length: 3),
        .floats("data.std", clipStd, "per-channel RGB std on the 0-255 scale", length: 3, min: 1e-6),
        .int("data.workers", 2, "decoding threads per rank (workers_per_gpu)", min: 0, max: 256),
        .int("data.prefetch", 4, "decoded batches kept ready ahead of the trainer", min: 0, max: 256),

        // MARK: train (issue 5)
        .int("train.batch_size", 64, "global batch per optimizer step over all ranks (official: 8 GPUs x 8)", min: 1, max: 10_000_000),
        .int("train.micro_batch", 8, "clips per rank per forward; gradient accumulation makes up batch_size", min: 1, max: 10_000_000),
        .int("train.epochs", 30, "training epochs (30 Kinetics, 50 SSv2 and Diving48)", min: 0, max: 1_000_000),
        .int("train.max_steps", 0, "optimizer steps to train; 0 = derived from train.epochs", min: 0, max: 1_000_000_000_000),
        .float("train.lr", 3e-4, "AdamW peak learning rate for the global batch", min: 0),
        .floats("train.betas", [0.9, 0.999], "AdamW betas", length: 2, min: 0, max: 0.999999),
        .float("train.eps", 1e-8, "AdamW epsilon", min: 0, max: 1),
        .float("train.weight_decay", 0.05, "AdamW decoupled weight decay", min: 0, max: 1000),
        .strings("train.no_decay_keys", officialNoDecayKeys, "parameters whose name contains one of these get no weight decay"),
        .float("train.backbone_lr_mult", 1.0, "lr multiplier for tunable backbone.* parameters (0.1 for ViT-L/14 K400; the head keeps 1)", min: 0, max: 1000),
        .float("train.warmup_epochs", 2.5, "linear warmup length in epochs (per step), then cosine decay to 0", min: 0, max: 1_000_000),
        .bool("train.lr_by_epoch", false, "false: the cosine advances every optimizer step; true: once per epoch, as mmcv's CosineAnnealing by default (by_epoch=True) in the official code, warmup still per step"),
        .float("train.clip_grad", 0, "max global gradient norm; 0 = no clipping (official)", min: 0, max: 1e12),
        .int("train.seed", 0, "seed of every random choice (sampling, augmentation, init, dropout)", min: 0, max: 9_007_199_254_740_991),
        .float("train.label_smoothing", 0, "label smoothing of the cross-entropy targets (0.1 official SSv2)", min: 0, below: 1),
        .int("train.log_interval", 20, "steps between progress lines and metrics.jsonl records", min: 1, max: 1_000_000_000_000),

        // MARK: checkpoint, evaluation, runtime
        .int("checkpoint.interval", 1000, "optimizer steps between checkpoints (epochs with checkpoint.by_epoch)", min: 1, max: 1_000_000_000_000),
        .bool("checkpoint.by_epoch", false, "checkpoint.interval counts epochs, as mmcv's CheckpointHook (checkpoint_config = dict(interval=10) in the official configs): a checkpoint at the end of every interval-th epoch, besides the run's end, a stop and a new best"),
        .int("checkpoint.max_failures", 3, "consecutive failed checkpoint writes (full disk, lost mount) after which training stops with exit status 74 instead of computing steps it cannot keep", min: 1, max: 1000),
        .int("checkpoint.keep_last", 3, "step checkpoints kept in work_dir/checkpoints (older ones pruned); 0 keeps all", min: 0, max: 1_000_000),
        .int("eval.interval", 0, "optimizer steps between validations (epochs with eval.by_epoch); 0 = only at the end", min: 0, max: 1_000_000_000_000),
        .choice("eval.average_clips", ["prob", "score"], "prob",
                "how a video's test views combine, as mmaction2's test_cfg average_clips: prob = softmax per view, averaged (the official configs); score = logits averaged (then one softmax)"),
        .bool("eval.by_epoch", false, "eval.interval counts epochs, as mmcv's EvalHook (evaluation = dict(interval=5) in the official configs): validate at the end of every interval-th epoch, whatever the dataset's size"),
        .float("dist.bucket_mb", 25, "gradient bucket size in MB for the allreduce (PyTorch DDP default 25)", min: 0, max: 100_000),
        .bool("profile", false, "record per-phase timings for the efficiency report"),
        .int("threads", 0, "compute threads per rank; 0 = cores / ranks", min: 0, max: 4096),
        .choice("gemm", ["auto", "openblas", "onednn", "blis"], "auto",
                "fp32 GEMM library of the linear layers; auto = AIM_GEMM if set, else the library measured fastest on this model's linear products at the start of a run (cached per CPU, threads and shapes)"),
    ]

    /// Keys by name.
    public static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0) })

    public static func key(_ name: String) -> ConfigKey? { byName[name] }
}
