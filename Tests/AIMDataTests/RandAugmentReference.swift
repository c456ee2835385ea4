import AIMData
import AIMTensor
import XCTest

// Reference outputs of imgaug 0.4.0 (Pillow 9.5.0, opencv-python-headless 4.7, numpy 1.23.5) for
// each RandAugment operation at the magnitudes RandAugment(n=4, m=7) uses. They were produced
// once, by hand, in a private virtualenv (imgaug is not a dependency of this project) with the
// script below; `python ref.py small` gives `smallReference`, `python ref.py large`
// `largeReference` and `python ref.py train` `trainReference` (FNV-1a 64 of the output bytes).
//
// # Reference values for Tests/AIMDataTests/RandAugmentTests.swift; modes small, large, train (imgaug 0.4.0, Pillow 9.5.0,
// # opencv-python-headless 4.7, numpy 1.23.5). Run by hand in a private venv; not a project dependency.
// import hashlib, numpy as np, imgaug.augmenters as iaa
// def img(w, h, full):
//     a = np.zeros((h, w, 3), np.uint8)
//     for y in range(h):
//         for x in range(w):
//             for c in range(3):
//                 if full: a[y, x, c] = 20 + (x*7 + y*11 + c*50 + ((x*y) % 13)*9) % 200
//                 else: a[y, x, c] = 30 + (x*29 + y*53 + c*101 + ((x*y) % 7)*17) % 190
//     return a
// M = 7
// f = lambda maxval: M * (maxval / 30)
// enh = f(0.9)
// shear = f(np.rad2deg(0.3)); trans = f(0.33); cut = min(max(f(20/32), 0), 20/32)
// P = iaa.pillike
// ops = [
//  ("autocontrast", P.Autocontrast(cutoff=0)),
//  ("equalize", P.Equalize()),
//  ("invert", iaa.Invert(p=1.0)),
//  ("rotate+", P.Affine(rotate=f(30), center=(0.5, 0.5), fillcolor=128)),
//  ("rotate-", P.Affine(rotate=-f(30), center=(0.5, 0.5), fillcolor=128)),
//  ("posterize", P.Posterize(nb_bits=8 - int(f(6)))),
//  ("solarize", P.Solarize(p=1.0, threshold=256 - int(f(256)))),
//  ("color+", P.EnhanceColor(1.0 + enh)), ("color-", P.EnhanceColor(1.0 - enh)),
//  ("contrast+", P.EnhanceContrast(1.0 + enh)), ("contrast-", P.EnhanceContrast(1.0 - enh)),
//  ("brightness+", P.EnhanceBrightness(1.0 + enh)), ("brightness-", P.EnhanceBrightness(1.0 - enh)),
//  ("sharpness+", P.EnhanceSharpness(1.0 + enh)), ("sharpness-", P.EnhanceSharpness(1.0 - enh)),
//  ("shearX+", P.Affine(shear={"x": shear}, center=(0, 0), fillcolor=128)),
//  ("shearX-", P.Affine(shear={"x": -shear}, center=(0, 0), fillcolor=128)),
//  ("shearY+", P.Affine(shear={"y": shear}, center=(0, 0), fillcolor=128)),
//  ("shearY-", P.Affine(shear={"y": -shear}, center=(0, 0), fillcolor=128)),
//  ("translateX+", P.Affine(translate_percent={"x": trans}, center=(0, 0), fillcolor=128)),
//  ("translateX-", P.Affine(translate_percent={"x": -trans}, center=(0, 0), fillcolor=128)),
//  ("translateY+", P.Affine(translate_percent={"y": trans}, center=(0, 0), fillcolor=128)),
//  ("translateY-", P.Affine(translate_percent={"y": -trans}, center=(0, 0), fillcolor=128)),
//  ("cutoutA", iaa.Cutout(1, position=(0.3, 0.8), size=cut, squared=True, fill_mode="constant", cval=128)),
//  ("cutoutB", iaa.Cutout(1, position=(0.95, 0.05), size=cut, squared=True, fill_mode="constant", cval=128)),
//  ("blur", P.FilterBlur()), ("smooth", P.FilterSmooth()),
//  ("fliplr", iaa.Fliplr(1.0)),
//  ("crop3057", iaa.KeepSizeByResize(iaa.Crop(px=(3, 0, 5, 7), keep_size=False), interpolation="linear")),
//  ("crop1212", iaa.KeepSizeByResize(iaa.Crop(px=(1, 2, 1, 2), keep_size=False), interpolation="linear")),
// ]
// import sys
// mode = sys.argv[1]
// for name, aug in ops:
//     if mode == "small":
//         a = img(9, 7, False)
//         if name == "equalize": a[0, 0] = 255
//         # Crops are checked at 64x48 only: OpenCV's resize rounds the last bytes of a row
//         # differently per SIMD width when a row is not a multiple of 32 bytes (40x30 is not).
//         if name.startswith("crop"): continue
//     elif mode == "large":
//         a = img(64, 48, True)
//     else:  # "train": the frame size RandAugment sees in the SSv2 pipeline
//         a = img(224, 224, True)
//     out = aug.augment_image(a.copy())
//     assert out.shape == a.shape and out.dtype == np.uint8
//     if mode == "small":
//         print('("%s", "%s"),' % (name, out.tobytes().hex()))
//     else:
//         h = 0xcbf29ce484222325
//         for b in out.tobytes():
//             h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
//         print('("%s", 0x%016x),' % (name, h))

/// The script's `img(w, h, full)`.
func referenceImage(width w: Int, height h: Int, full: Bool) -> FrameStack {
    var px = [UInt8](repeating: 0, count: w * h * 3)
    for y in 0..<h {
        for x in 0..<w {
            for c in 0..<3 {
                px[(y * w + x) * 3 + c] = full
                    ? UInt8(20 + (x * 7 + y * 11 + c * 50 + ((x * y) % 13) * 9) % 200)
                    : UInt8(30 + (x * 29 + y * 53 + c * 101 + ((x * y) % 7) * 17) % 190)
            }
        }
    }
    return FrameStack(count: 1, height: h, width: w, pixels: px)
}

func fnv1a(_ bytes: [UInt8]) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

/// 9×7 outputs, hex, row-major RGB.
let smallReference: [(String, String)] = [
    ("autocontrast", "00870f27ae364ed65e75fd869c23aec34ad5ea71fd11992038c04847cf57850c96c34ad50188103fc74f7d048ebb42cd59e169971da88f15a0e46bf638c0488d149f42ca52971da8ec73ffa027b2f57c04d65de942ca52ae34bf79008ae56cf8b037c21ca42be86ffa53db641da52da027b2820994058d14e86ffa6af27b4cd45d2fb73fb238c465ed75ff860df87f06f178008a119c840a957d048e76ff8710971fac33be5de56d6df57e7d048e8d149f9d24afae34bfbe45d06ef67f"),
    ("equalize", "ffffff3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("invert", "e17cd5c45fb8a7429b8a257e6dc66150a944338c27d46fc8b752abac47a07ed77250a944e07bd4b24da684dd7856af4a9f3a9371ca6577d06b38912cb752ab78d16cb04ba471ca65328b266ac35e2b84dd429b36b04ba460b95487e07b37902b5eb752cc67c0358e29a33e97cb66bf6ac35e80d974dd78d1358e29922d86a8439cbe59b25db65196318a247dd62982db2e87e07ad36e7fd87384dd7889247dd570c961ba559c3790902b8484dd7878d16c6cc56060b95454ad488f2a83"),
    ("rotate+", "53b85f3ba04758bd6475da8192399eaf56bbcc73d82b903748ad54882f9481288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db82a249ae9e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b72a8f36"),
    ("rotate-", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b90378e359a53b85f81288daf56bb1f842b4db2597b2287a950b560c56cd47b22882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae349940db8229d67d24d1781f852c9180278c7b228776db822a8f3669ce7563c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("posterize", "1e822a3aa04658bc6474da8092389eae56bacc72d82a903648ac5452b85e80288cae56ba1e842a4cb2587a2286a850b460c46c8e349a882e94c66ed248ac54862e924eb45a8e349acc74d8943ca0d47a22bc64c84eb45a9e46aa781e84c86ed4a048ac32983eca70d65cc068349840943ca07e268a22862eca70d66cd27856bc6240a64ca248ae68ce74da8228d67c24d0781e842c9080268c7a228676da822a8e369e44aa62c86e6ed47a7a2286862e92923a9e9e46aaaa52b670d47c"),
    ("solarize", "1e832a3ba04758bd6475258192399eaf56bb3373272b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b5603a6c8e359a882f94386e2c48ad54872e934fb45b8e359a327426953ca12b7b22bd64364fb45b9f46ab781f84376f2ba148ad33983f3571295cc168349940953ca17f268b22872e3571296d2d7957bc6341a64da249ae693175248229297d242e781f852c9180278c7b22877624822a8f369e45aa63376f6f2b7b7b2287872e93933a9f9f46abab52b7702a7c"),
    ("color+", "118b1f2ea83c4bc55968e2769c31abb94ec8d66be51e982c3bb54946c0548b209ab94ec8128c2040ba4e851a94b348c253cd61982da79227a1d166e03bb5499126a042bc50982da7d76ce69f34aee3770bc75cd642bc50a93eb8821791d267e1ab40ba26a034d469e34fc95d27a1359f34ae891e98158f23d469e360da6e4ac45834ae42ac41bb5cd66aea7e12e5790de074088f249e8a1f99851a9469e3771d972ba83db756d06462dc70851a949126a09d32aca93eb8b54ac463dd71"),
    ("color-", "2a7a3447975164b46e81d18b874090a45dadc17aca37874154a45e5faf69762f7fa45dad2b7b3559a9637029799e57a76cbc76833c8c7d3686bc75c554a45e7c35855bab65833c8cc27bcb8a4393c47e38b26bbb5bab65944d9d6d2676bd76c6964f9f3f8f49bf78c868b87240904a8a4393742d7d2e7e38bf78c879c98363b36d4d9d579750a075c57fcb853fc6803ac17b357a3383752e7e70297982d28c368640934c9c6fbf797bcb857029797c3585884191944d9da059a97ccc86"),
    ("contrast+", "0a85192da83c51cb5f74ee82972ba5ba4ec8dd71eb1a94293db74c4bc559821691ba4ec80c861a43bd527b0f89b347c15ad4699226a08b1f99d76be53db74c891e9846c0549226a0de72ed9a2fa9e77b0fcb5fd946c054a63bb5770c86d86ce7a93db7249e32db6fe955d064259f349a2fa980148e0f891edb6fe96ae4794fca5e35af43aa3eb965df74ef8318e97d12e3770c871b9681158f7b0f8975ef83199327a53ab45ed86c6ce77b7b0f89891e98982ca6a63bb5b549c46ee87c"),
    ("contrast-", "31803a4897515eae6875c57f8c4696a35dadba74c43b8b4452a25b5aaa647f3988a35dad31813b56a65f7a34849e58a865b56e894393843e8eb670c052a25b843d8d57a761894393bb75c48f4898c07a34ae68b857a7619750a0783181b771c09852a241914bb872c262b16b42924b8f48987d378734843db872c26fbf795ead674c9c569953a26cbc75c68039c27c35be7831823c8b7e38887a348476c6803a8a44964f9f67b77171c07a7a3484843d8d8d47979750a0a05aa971c17b"),
    ("brightness+", "249e3247c1556ae4798dff9cb044bfd368e2f68bff34ae4257d16564de729c30aad368e2259f345dd76b9429a3cc60db74ee82ab40baa438b3f085ff57d165a337b15fd96eab40baf88cffb448c2ff9429e479f35fd96ec054ce91259ff286ffc257d13db74cf488ff6fe97d3eb94db448c2992da829a337f488ff83fe9269e3774ec85dc458d27ff98dff9d31ff972bfc9125a035af9a2fa99429a38eff9d32ad41bf53cd77f28686ff949429a3a337b1b146c0c054cece63dd87ff96"),
    ("brightness-", "1767212e7e3845954f5cac65732d7c8a4393a15aaa21712b38884241914b651f6f8a43931868213c8c46611a6a853f8e4b9b557029796b25749d56a63888426a24743e8e47702979a15bab752f7fa7611a954f9e3e8e477d37875e18689e57a77f38882878319f59a9489852297832752f7f641e6d1a6a249f59a956a55f44944e33833c7f398952a25cad6620a9621ca55e18692272651e6e611a6a5dad6621702a7c36864e9e5757a761611a6a6a2474742d7d7d378787409058a861"),
    ("sharpness+", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f841b90b84fc414822047bc53771883ac4db859d0688e359a882f94d06edc40b84c89249549c0558f2d9bd576e19533a4d47b22bd64c947bf53a442b0771483d26fdea43fb0279b33d36ee25cc1683499409533a77c1d91108d22d273e169e07552c35e3ba947a249ae69ce75e6811fe07e1cda7b138425937e1f8a7b158776e7822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("sharpness-", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f7d3489a55cb129853552a75e7e2b8aa552b166b96f8e359a882f94bd6ec94fa15b84379054a7608c3c98c471d094449dd47b22bd64c956a8629949a5782984bd6ec99d50a93e944ac073c95cc16834994094449a812e84338039c16eca70c37c5bb46746a252a249ae69ce75cf8232cb7b2bc7742a85328e812e8d7b2e8775ce812a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("shearX+", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("shearX-", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("shearY+", "1e832a3ba04758bd6475da8192399eaf56bbcc73d880808080808053b85f81288daf56bb1f842b4db2597b2287a950b52b903748ad54882f94c76ed348ad54872e934fb45b8e359acd74d960c56c8e359abd64c94fb45b9f46ab781f84c86fd4a148ad33983f953ca1d47b22349940953ca17f268b22872eca71d66dd27957bc63ca71d65cc16869ce75db8229d67d24d1781f852c9180278c7b228741a64da249ae9e45aa63c86f6fd47b7b2287872e93933a9f9f46ab76db822a8f36"),
    ("shearY-", "1e832a3ba04758bd6475da8192399eaf56bbcc73d860c56c8e359a53b85f81288daf56bb1f842b4db2597b2287a950b5953ca1d47b22882f94c76ed348ad54872e934fb45b8e359acd74d9ca71d65cc168bd64c94fb45b9f46ab781f84c86fd4a148ad33983f41a64da249ae349940953ca17f268b22872eca71d66dd27957bc6376db822a8f3669ce75db8229d67d24d1781f852c9180278c7b2287ab52b770d57c9e45aa63c86f6fd47b7b2287872e93933a9f9f46ab808080808080"),
    ("translateX+", "8080801e832a3ba04758bd6475da8192399eaf56bbcc73d82b903780808053b85f81288daf56bb1f842b4db2597b2287a950b560c56c808080882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1808080bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d6808080349940953ca17f268b22872eca71d66dd27957bc6341a64d80808069ce75db8229d67d24d1781f852c9180278c7b228776db828080809e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b7"),
    ("translateX-", "3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5480808081288daf56bb1f842b4db2597b2287a950b560c56c8e359a808080c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b228080804fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168808080953ca17f268b22872eca71d66dd27957bc6341a64da249ae808080db8229d67d24d1781f852c9180278c7b228776db822a8f3680808063c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c808080"),
    ("translateY+", "8080808080808080808080808080808080808080808080808080801e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f36"),
    ("translateY-", "53b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c808080808080808080808080808080808080808080808080808080"),
    ("cutoutA", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229808080d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("cutoutB", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed348ad54872e934fb45b8e359acd74d9953ca1d47b22bd64c94fb45b9f46ab781f84c86fd4a148ad33983fca71d65cc168349940953ca17f268b22872eca71d66dd27957bc6341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("blur", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f81288daf56bb1f842b4db2597b2287a950b560c56c8e359a882f94c76ed36f807b7f6e8b857f91787e84818781953ca1d47b22bd64c94fb45b8c7a748e6577826576786678837183ca71d65cc168349940953ca185739182718381648189608992699341a64da249ae69ce75db8229d67d24d1781f852c9180278c7b228776db822a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("smooth", "1e832a3ba04758bd6475da8192399eaf56bbcc73d82b903748ad5453b85f72627e83738f50895c6782738b5097985da4818e7e8e359a882f949b6ea76b78777a5c866a7876895b95a367af936691d47b22bd64c9727f7e8456907c4f88986ba491729d6a86769c7e9a5cc1683499409164808c506c766665a2669f7d8b896b96775c9668a249ae69ce75a28457a5784aa36858874b84854a917b5c87749f802a8f369e45aa63c86f6fd47b7b2287872e93933a9f9f46abab52b770d57c"),
    ("fliplr", "48ad542b9037cc73d8af56bb92399e75da8158bd643ba0471e832a8e359a60c56ca950b57b22874db2591f842baf56bb81288d53b85fd47b22953ca1cd74d98e359a4fb45b872e9348ad54c76ed3882f945cc168ca71d633983fa148adc86fd4781f849f46ab4fb45bbd64c9a249ae41a64d57bc636dd279ca71d622872e7f268b953ca13499402a8f3676db827b228780278c852c91d1781fd67d24db822969ce7570d57cab52b79f46ab933a9f872e937b22876fd47b63c86f9e45aa"),
]

/// 64×48 outputs, FNV-1a 64.
let largeReference: [(String, UInt64)] = [
    ("autocontrast", 0xfd355dfe90247000),
    ("equalize", 0xd4be486999979887),
    ("invert", 0x6d3b15aba185dd45),
    ("rotate+", 0x2faa117320d603b6),
    ("rotate-", 0x0dfe3f20a34e348f),
    ("posterize", 0xdd9d01d990a2774f),
    ("solarize", 0x6c5cb765a3ccb5ea),
    ("color+", 0x44fcb82827ae121b),
    ("color-", 0xd4a7116da93ff88e),
    ("contrast+", 0xc18c09b7351423c6),
    ("contrast-", 0x15d74f42e36cb1c5),
    ("brightness+", 0x649b231d3aafce15),
    ("brightness-", 0xfe52e90188daaea0),
    ("sharpness+", 0xf995c5708bf079ab),
    ("sharpness-", 0x9f3ffabfbf67106f),
    ("shearX+", 0x705dd26fb828665a),
    ("shearX-", 0xab32e5fd96706978),
    ("shearY+", 0xe01e06cc5529e297),
    ("shearY-", 0xad185a73b114fdcf),
    ("translateX+", 0x09fd2f410630c3f0),
    ("translateX-", 0xd92075af891202ae),
    ("translateY+", 0xc26e00a1c9df1a55),
    ("translateY-", 0xde988fe35cd8da06),
    ("cutoutA", 0x7a1cddc2ee710d0e),
    ("cutoutB", 0x3096d55afb7fa06e),
    ("blur", 0x0e455a60e747ef2d),
    ("smooth", 0xad09dbd8a510ec24),
    ("fliplr", 0x49ff3b6f0469e149),
    ("crop3057", 0xc9cd3cfbc402febe),
    ("crop1212", 0x814549c08b06fb72),
]

/// 224×224 outputs (the training frame size), FNV-1a 64.
let trainReference: [(String, UInt64)] = [
    ("autocontrast", 0xa55cff2264a0a9a0),
    ("equalize", 0xef99019c4cbef3d5),
    ("invert", 0xded142cb63db7c1c),
    ("rotate+", 0x0af61c7be99ce230),
    ("rotate-", 0xc5535c9e6dad7cd8),
    ("posterize", 0x75c7dd1cb27a6719),
    ("solarize", 0x165c6016ad5e7559),
    ("color+", 0xa3278728ba0460be),
    ("color-", 0x97802e02c5630b38),
    ("contrast+", 0x13f833eb891a9f50),
    ("contrast-", 0xc576941e84bec330),
    ("brightness+", 0x2519a63ca2b46e1f),
    ("brightness-", 0x318ac7c29ac59420),
    ("sharpness+", 0x125d9164b19e8ed7),
    ("sharpness-", 0xcabdb05c9b19dbb4),
    ("shearX+", 0x05420ea2735d31f9),
    ("shearX-", 0x62adaaddab893cc2),
    ("shearY+", 0x26f7f509b2bd658d),
    ("shearY-", 0x1df6b9f1b579d584),
    ("translateX+", 0x651660953ec409a4),
    ("translateX-", 0x8047d6dff933d54c),
    ("translateY+", 0x5ee24d5938c2540e),
    ("translateY-", 0xeb7b7977a3899b0a),
    ("cutoutA", 0xc22dca469498ecc6),
    ("cutoutB", 0x39081d13152e6550),
    ("blur", 0x49f57e2e10ab0e37),
    ("smooth", 0xee946416f4ea5db5),
    ("fliplr", 0x6ae66ffd9e32a2ee),
    ("crop3057", 0x6f799b36454c5cb9),
    ("crop1212", 0xa0d0c93a029e8ee0),
]
