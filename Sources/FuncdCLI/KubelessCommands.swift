import ArgumentParser
import FuncdCore

/// `funcd kubeless …`: moving off kubeless. The parsing lives here, with every other command, so
/// that `--help` is the same everywhere; the work is done by `funcd-kubeless`, which `funcd`
/// execs (it links the YAML parser, and with it Foundation, which the images' executables do not).
public struct Kubeless: ParsableCommand {
    public static let configuration = CommandConfiguration(
        abstract: "Move kubeless functions to funcd.",
        subcommands: [KubelessConvert.self]
    )

    public init() {}
}

/// `funcd kubeless convert FILE…`.
public struct KubelessConvert: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Print the Kubernetes manifests that run kubeless Functions and triggers on funcd's images.",
        discussion: """
            Reads kubeless.io/v1beta1 Function, HTTPTrigger, CronJobTrigger and KafkaTrigger resources \
            (several documents per file, or a List, as `kubectl get functions,httptriggers,cronjobtriggers,\
            kafkatriggers -o yaml` prints them) and prints, per Function, a ConfigMap with its code and \
            dependencies file, a Deployment on funcd-<language> (an init container installs the \
            dependencies), a Service and its HorizontalPodAutoscaler; a CronJob per CronJobTrigger, an \
            Ingress per HTTPTrigger, and a KafkaTrigger's topics in the selected Functions' KAFKA_* \
            variables. A runtime funcd embeds as another version (python3.7, nodejs12, ruby2.4) runs as \
            python3.11, nodejs18 or ruby3.1, with a warning on stderr. What cannot be converted is one \
            error line on stderr each, the rest is still printed, and the exit status is 1.
            """
    )

    @Argument(help: "kubeless YAML files; - reads standard input.")
    public var files: [String] = ["-"]

    @Option(help: "KAFKA_BROKERS (host:port,…) for the functions a KafkaTrigger selects.")
    public var kafkaBrokers: String?

    @Option(help: "Prepended to each image name, e.g. ghcr.io/acme/ for ghcr.io/acme/funcd-python.")
    public var imagePrefix: String = ""

    @Option(help: "The images' tag.")
    public var imageTag: String = "latest"

    public init() {}

    public func run() throws {
        throw FuncdError(
            .configuration,
            "funcd kubeless convert is done by funcd-kubeless, which funcd runs: run funcd from a build (swift build) or a release")
    }
}

/// Whether `file` names a kubeless Function manifest (`funcd run function.yaml`).
public func isKubelessManifest(_ file: String) -> Bool {
    file.hasSuffix(".yaml") || file.hasSuffix(".yml")
}
