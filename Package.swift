// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "WNFlow",
    products: [
        .library(name: "GSLKit", targets: ["GSLKit"]),
        .library(name: "WNFlow", targets: ["WNFlow"]),
        .executable(name: "wnflow", targets: ["wnflow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CGSL", providers: [.apt(["libgsl-dev", "libopenblas-dev"])]),
        .systemLibrary(name: "CGLPK", providers: [.apt(["libglpk-dev"])]),
        .target(name: "GSLKit", dependencies: ["CGSL"]),
        .target(name: "WNFlow", dependencies: ["GSLKit", "CGLPK"]),
        .executableTarget(name: "wnflow", dependencies: [
            "WNFlow", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "example-quickstart", dependencies: ["WNFlow"], path: "Examples/Quickstart"),
        .executableTarget(name: "example-trajectory", dependencies: ["WNFlow"], path: "Examples/TrajectoryStudy"),
        .executableTarget(name: "example-magnification", dependencies: ["WNFlow"], path: "Examples/MagnificationStudy"),
        .executableTarget(name: "example-signed", dependencies: ["WNFlow"], path: "Examples/SignedRecovery"),
        .testTarget(name: "GSLKitTests", dependencies: ["GSLKit"]),
        .testTarget(name: "WNFlowTests", dependencies: ["WNFlow", "GSLKit"]),
        .testTarget(name: "CLITests", dependencies: ["wnflow"]),
    ],
    swiftLanguageModes: [.v6]
)
