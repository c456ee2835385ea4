import AIMConfig

extension ModelConfig {
    /// The `model.*` keys of a validated experiment config, checked together (`validate`) here: the
    /// first reader of a config may size things from them (the GEMM probe lists the step's products
    /// per Swin stage, reading `num_heads[i]` for each of `depths`) before a model is built.
    public init(_ config: Config) throws {
        var settings: [String: Any] = [:]
        for (key, value) in config.values where key.hasPrefix("model.") {
            switch value {
            case .int(let v): settings[key] = v
            case .float(let v): settings[key] = v
            case .bool(let v): settings[key] = v
            case .string(let v): settings[key] = v
            case .strings(let v): settings[key] = v
            case .floats(let v): settings[key] = v
            }
        }
        try self.init(settings: settings)
        try validate()
    }
}
