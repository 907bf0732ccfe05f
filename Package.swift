// swift-tools-version:6.2
import PackageDescription

// Linux only: funcd is built for Debian bookworm (glibc, /proc, memfd, pidfd, cgroups), so no
// platform is declared.
//
// The target graph is the design (see README "Parts"): FuncdCore is values and rules, with no
// transport, no interpreter and no I/O; FuncdSystem is what a process asks of Linux; FuncdHTTP,
// FuncdKafka and each language host depend on those two, never on each other; each C module is
// imported by exactly one Swift target. scripts/test builds with
// `--explicit-target-dependency-import-check error`, so an import the graph does not declare
// fails the build.
let package = Package(
    name: "funcd",
    products: [
        .executable(name: "funcd", targets: ["funcd"]),
        .executable(name: "funcd-python", targets: ["funcd-python"]),
        // funcd-python's front door and worker, a library Debian's python3.11 loads as an
        // extension module (see Sources/PythonHost/PythonHost+Extension.swift); the funcd-python
        // program only starts python3 on it.
        .library(name: "funcd-python-worker", type: .dynamic, targets: ["funcd-python-worker"]),
        .executable(name: "funcd-node", targets: ["funcd-node"]),
        .executable(name: "funcd-ruby", targets: ["funcd-ruby"]),
        .executable(name: "funcd-exec", targets: ["funcd-exec"]),
        .executable(name: "funcd-kubeless", targets: ["funcd-kubeless"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        .target(
            name: "FuncdCore",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
            ]
        ),
        // What a funcd process asks of Linux beyond FuncdCore's values: threads of its own, whole
        // writes to a descriptor, the glue's folder, start-up pages given back, the in-flight
        // table shared with the supervisor. No NIO, no interpreter.
        .target(
            name: "FuncdSystem",
            dependencies: ["FuncdCore"]
        ),
        .target(
            name: "FuncdHTTP",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // CPython's headers only (python3.pc, not python3-embed.pc): the interpreter is python3
        // itself, which exports the C API to the extension module funcd-python's worker is.
        .systemLibrary(
            name: "CPython",
            pkgConfig: "python3",
            providers: [.apt(["libpython3-dev"])]
        ),
        .target(
            name: "PythonHost",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "CPython",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The only C++: Node's embedder API behind a plain C header (Debian's libnode-dev ships
        // no pkg-config file; its headers are in /usr/include/node).
        .target(
            name: "CNodeEmbed",
            cxxSettings: [.unsafeFlags(["-I/usr/include/node", "-Wno-deprecated-declarations"])],
            linkerSettings: [.linkedLibrary("node"), .linkedLibrary("uv")]
        ),
        .target(
            name: "NodeHost",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "CNodeEmbed",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .systemLibrary(
            name: "CRuby",
            pkgConfig: "ruby-3.1",
            providers: [.apt(["ruby-dev"])]
        ),
        // Ruby's C API, used only here and only on Ruby's threads, behind a plain C header.
        .target(
            name: "CRubyEmbed",
            dependencies: ["CRuby"],
            cSettings: [.unsafeFlags(["-Wno-default-const-init-field-unsafe"])]
        ),
        .target(
            name: "RubyHost",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "CRubyEmbed",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // posix_spawn with the flags Swift's Glibc module does not reach (a new session, closefrom)
        // and pidfd_open, for the exec runtime only.
        .target(name: "CExecSpawn"),
        .target(
            name: "ExecHost",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "CExecSpawn",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .target(
            name: "FuncdKafka",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "CRdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "FuncdWorker",
            dependencies: [
                "FuncdCLI",
                "FuncdCore",
                "FuncdSystem",
                "FuncdHTTP",
                "FuncdKafka",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "FuncdSupervisor",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                "FuncdCLI",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "FuncdCLI",
            dependencies: [
                "FuncdCore",
                "FuncdSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // kubeless resources read and converted (`funcd kubeless convert`, `funcd run function.yaml`)
        // in an executable of their own: Yams brings Foundation, which neither the interpreter-less
        // funcd of the base image nor the language executables carry. funcd execs it.
        // zlib's inflate, for a Function's zip or tar.gz code (FuncdKubeless only).
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "FuncdKubeless",
            dependencies: [
                "FuncdCore",
                "CZlib",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "funcd-kubeless",
            dependencies: ["FuncdCLI", "FuncdCore", "FuncdKubeless", "FuncdSystem"]
        ),
        .executableTarget(
            name: "funcd",
            dependencies: [
                "FuncdSupervisor"
            ]
        ),
        // C: only execs python3 on funcd-python-worker (see its main.c).
        .executableTarget(name: "funcd-python"),
        // In release builds the Swift runtime is linked in statically, as in the executables
        // (scripts/build-release's --static-swift-stdlib reaches executables only): an image carries
        // no Swift toolchain. Debug builds use the toolchain's, as their executables do.
        // It exports only PyInit__funcd_worker (exports.map).
        .target(
            name: "funcd-python-worker",
            dependencies: ["FuncdCore", "FuncdSupervisor", "FuncdWorker", "PythonHost"],
            exclude: ["exports.map"],
            linkerSettings: [
                .unsafeFlags(["-Xlinker", "--version-script=Sources/funcd-python-worker/exports.map"]),
                .unsafeFlags(["-static-stdlib"], .when(configuration: .release)),
            ]
        ),
        .executableTarget(
            name: "funcd-node",
            dependencies: ["FuncdSupervisor", "FuncdWorker", "NodeHost"]
        ),
        .executableTarget(
            name: "funcd-ruby",
            dependencies: ["FuncdSupervisor", "FuncdWorker", "RubyHost"]
        ),
        .executableTarget(
            name: "funcd-exec",
            dependencies: ["ExecHost", "FuncdSupervisor", "FuncdWorker"]
        ),
        // The fuzz target over the request path (see Sources/funcd-fuzz and scripts/fuzz); built
        // plainly it replays a corpus.
        .executableTarget(
            name: "funcd-fuzz",
            dependencies: ["FuncdHTTP"]
        ),
        .testTarget(
            name: "FuncdCoreTests",
            dependencies: ["FuncdCore", "FuncdSystem", .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        .testTarget(
            name: "FuncdSystemTests",
            dependencies: ["FuncdCore", "FuncdSystem"]
        ),
        .testTarget(
            name: "FuncdKubelessTests",
            dependencies: [
                "FuncdKubeless",
                "FuncdCore",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "FuncdHTTPTests",
            dependencies: [
                "FuncdCore",
                "FuncdHTTP",
                "FuncdSystem",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "FuncdWorkerTests",
            dependencies: [
                "FuncdWorker",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "ExecHostTests",
            dependencies: ["ExecHost", "FuncdCore"]
        ),
        .testTarget(
            name: "FuncdKafkaTests",
            dependencies: [
                "FuncdCore",
                "FuncdKafka",
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "FuncdCLITests",
            dependencies: [
                "FuncdCLI",
                "FuncdCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "FuncdSupervisorTests",
            dependencies: ["FuncdSupervisor", "FuncdCore"]
        ),
        .testTarget(
            name: "FuncdEndToEndTests",
            dependencies: ["FuncdCore"],
            exclude: ["Fixtures"]
        ),
    ],
    cxxLanguageStandard: .cxx17
)

// Our own targets: Swift 6 mode, strict concurrency, and no warnings.
for target in package.targets where target.type != .system {
    target.swiftSettings = (target.swiftSettings ?? []) + [.treatAllWarnings(as: .error)]
}
