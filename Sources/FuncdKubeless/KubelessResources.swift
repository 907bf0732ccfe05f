import Yams

/// kubeless's resources (`kubeless.io/v1beta1`), as `kubectl get functions,httptriggers,
/// cronjobtriggers,kafkatriggers -o yaml` prints them (a `List` of items) or as they were written
/// (one or more documents). Field names are the ones kubeless's Go types give them
/// (`pkg/apis/kubeless/v1beta1` in kubeless and its trigger repositories); anything else in a
/// document is kept as YAML for the conversion to carry over or to name as not converted.
public struct KubelessResources {
    public var functions: [Function] = []
    public var httpTriggers: [HTTPTrigger] = []
    public var cronJobTriggers: [CronJobTrigger] = []
    public var kafkaTriggers: [KafkaTrigger] = []
    /// One line per document that is not one of these, or not readable as one.
    public var problems: [String] = []

    public struct Metadata {
        public var name: String
        public var namespace: String?
        public var labels: [(String, String)]
        public var annotations: [(String, String)]
    }

    /// A `Function`: its spec's ten fields.
    public struct Function {
        public var metadata: Metadata
        /// `module.function`.
        public var handler: String
        public var runtime: String
        /// The code: text, base64, or a URL, as `contentType` says.
        public var function: String
        /// `text`, `base64` or `url`, with `+zip`, `+compressedtar` or `+deps`.
        public var contentType: String
        public var checksum: String
        public var deps: String
        /// Seconds, as a string (kubeless's type).
        public var timeout: String
        /// An `apps/v1` Deployment whose parts override the generated one's.
        public var deployment: Node?
        /// A `v1` ServiceSpec.
        public var service: Node?
        /// An `autoscaling/v2beta1` HorizontalPodAutoscaler.
        public var horizontalPodAutoscaler: Node?
    }

    public struct HTTPTrigger {
        public var metadata: Metadata
        public var functionName: String
        public var hostName: String
        /// `tls`: a certificate from ACME (kube-lego, cert-manager's ingress shim).
        public var tlsACME: Bool
        public var tlsSecret: String
        public var path: String
        public var basicAuthSecret: String
        /// `nginx` (kubeless's default), `traefik` or `kong`.
        public var gateway: String
        public var corsEnable: Bool
    }

    public struct CronJobTrigger {
        public var metadata: Metadata
        public var functionName: String
        public var schedule: String
        /// Any JSON; absent (or null) means a GET.
        public var payload: Node?
    }

    public struct KafkaTrigger {
        public var metadata: Metadata
        public var topic: String
        /// `functionSelector`: a label selector over Functions.
        public var matchLabels: [(String, String)]
        public var matchExpressions: [(key: String, operator: String, values: [String])]
    }

    public init() {}

    /// Reads every document of `text` (from `source`, for messages), `List`s opened up.
    public mutating func read(_ text: String, source: String) {
        let documents: [Node]
        do {
            documents = Array(try Yams.compose_all(yaml: text))
        } catch {
            problems.append("\(source): not YAML: \(Self.describe(error))")
            return
        }
        for (index, document) in documents.enumerated() {
            add(document, source: documents.count > 1 ? "\(source) (document \(index + 1))" : source)
        }
    }

    private mutating func add(_ document: Node, source: String) {
        guard document.mapping != nil else {
            if document != Node("") && document.null == nil {
                problems.append("\(source): not a Kubernetes object (a mapping with kind and apiVersion)")
            }
            return
        }
        let kind = document["kind"]?.string ?? ""
        let apiVersion = document["apiVersion"]?.string ?? ""
        if kind == "List" || kind.hasSuffix("List") {
            for (index, item) in (document["items"]?.array() ?? []).enumerated() {
                add(item, source: "\(source) item \(index + 1)")
            }
            return
        }
        let name = document["metadata"]?["name"]?.string ?? ""
        let place = name.isEmpty ? "\(source): \(kind.isEmpty ? "object" : kind)" : "\(kind) \(name)"
        guard apiVersion.hasPrefix("kubeless.io/") else {
            problems.append("\(place) (\(apiVersion.isEmpty ? "no apiVersion" : apiVersion)): not a kubeless resource; not converted")
            return
        }
        guard !name.isEmpty else {
            problems.append("\(place): no metadata.name; not converted")
            return
        }
        let metadata = Metadata(
            name: name, namespace: document["metadata"]?["namespace"]?.string,
            labels: Self.pairs(document["metadata"]?["labels"]), annotations: Self.pairs(document["metadata"]?["annotations"]))
        let spec = document["spec"] ?? Node([(Node, Node)]())
        switch kind {
        case "Function":
            functions.append(
                Function(
                    metadata: metadata, handler: Self.text(spec["handler"]), runtime: Self.text(spec["runtime"]),
                    function: Self.text(spec["function"]), contentType: Self.text(spec["function-content-type"]),
                    checksum: Self.text(spec["checksum"]), deps: Self.text(spec["deps"]), timeout: Self.text(spec["timeout"]),
                    deployment: Self.present(spec["deployment"]), service: Self.present(spec["service"]),
                    horizontalPodAutoscaler: Self.present(spec["horizontalPodAutoscaler"])))
        case "HTTPTrigger":
            httpTriggers.append(
                HTTPTrigger(
                    metadata: metadata, functionName: Self.text(spec["function-name"]), hostName: Self.text(spec["host-name"]),
                    tlsACME: spec["tls"]?.bool ?? false, tlsSecret: Self.text(spec["tls-secret"]), path: Self.text(spec["path"]),
                    basicAuthSecret: Self.text(spec["basic-auth-secret"]), gateway: Self.text(spec["gateway"]),
                    corsEnable: spec["cors-enable"]?.bool ?? false))
        case "CronJobTrigger":
            cronJobTriggers.append(
                CronJobTrigger(
                    metadata: metadata, functionName: Self.text(spec["function-name"]), schedule: Self.text(spec["schedule"]),
                    payload: Self.present(spec["payload"])))
        case "KafkaTrigger":
            let selector = spec["functionSelector"]
            let expressions = (selector?["matchExpressions"]?.array() ?? []).map { expression in
                (
                    key: Self.text(expression["key"]), operator: Self.text(expression["operator"]),
                    values: (expression["values"]?.array() ?? []).compactMap(\.string)
                )
            }
            kafkaTriggers.append(
                KafkaTrigger(
                    metadata: metadata, topic: Self.text(spec["topic"]), matchLabels: Self.pairs(selector?["matchLabels"]),
                    matchExpressions: expressions))
        default:
            problems.append("\(place): a kubeless \(kind) is not converted (funcd converts Function, HTTPTrigger, CronJobTrigger and KafkaTrigger)")
        }
    }

    /// A scalar as its text ("" when absent or null); numbers stay as written (`timeout: 30`).
    static func text(_ node: Node?) -> String {
        guard let node, node.null == nil, case .scalar(let scalar) = node else { return "" }
        return scalar.string
    }

    /// A mapping of scalars as (key, value) pairs in their order.
    static func pairs(_ node: Node?) -> [(String, String)] {
        guard let mapping = node?.mapping else { return [] }
        return mapping.compactMap { key, value in key.string.map { ($0, text(value)) } }
    }

    /// `node` unless it is absent, null or an empty mapping (kubeless's zero values).
    static func present(_ node: Node?) -> Node? {
        guard let node, node.null == nil else { return nil }
        if let mapping = node.mapping, mapping.isEmpty { return nil }
        return node
    }

    static func describe(_ error: any Error) -> String {
        "\(error)".split(separator: "\n").first.map(String.init) ?? "\(error)"
    }
}
