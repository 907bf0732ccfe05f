import Foundation
import FuncdCore
import Yams

/// kubeless resources → the Kubernetes objects that run them on funcd's images, shaped like
/// `images/k8s/<language>.yaml`: per Function a ConfigMap (code and dependencies file), a
/// Deployment (an init container installs the dependencies; funcd serves), a Service, and an
/// HorizontalPodAutoscaler when it had one; a CronJob per CronJobTrigger; an Ingress per
/// HTTPTrigger; a KafkaTrigger's topics and broker as the selected Functions' Kafka variables.
/// What cannot be converted is one line in `errors`, and the rest still converts.
public struct Conversion {
    public struct Options {
        /// Prepended to `funcd-<language>:latest` (a registry and folder: `ghcr.io/acme/`).
        public var imagePrefix = ""
        public var imageTag = "latest"
        /// `KAFKA_BROKERS` for functions a KafkaTrigger selects (kubeless's controller had its own).
        public var kafkaBrokers: String?
        public init() {}
    }

    public private(set) var documents: [Node] = []
    public private(set) var warnings: [String] = []
    public private(set) var errors: [String] = []

    /// The functions converted, by name, for the triggers.
    private var converted: [String: (function: KubelessResources.Function, source: FunctionSource, port: Int)] = [:]

    public init(_ resources: KubelessResources, options: Options = Options()) {
        errors = resources.problems
        // Kafka variables go into the Deployments: worked out first.
        let kafka = kafkaVariables(resources, options: options)
        for function in resources.functions {
            do {
                let source = try FunctionSource(function)
                warnings += source.warnings
                let port = Self.port(of: function)
                converted[function.metadata.name] = (function, source, port)
                documents.append(configMap(function, source))
                documents.append(try deployment(function, source, port: port, options: options, kafka: kafka[function.metadata.name] ?? []))
                documents.append(service(function, port: port))
                if let hpa = try autoscaler(function) { documents.append(hpa) }
            } catch {
                errors.append(error.description)
            }
        }
        for trigger in resources.cronJobTriggers {
            do { documents.append(try cronJob(trigger)) } catch { errors.append(error.description) }
        }
        for trigger in resources.httpTriggers {
            do { documents.append(try ingress(trigger)) } catch { errors.append(error.description) }
        }
    }

    /// The YAML: documents separated by `---`.
    public func yaml() throws -> String {
        try Yams.serialize(nodes: documents, width: -1, allowUnicode: true, explicitStart: true, sortKeys: false)
    }

    // MARK: - Labels

    static func labels(_ function: KubelessResources.Function) -> [(String, String)] {
        // kubeless's controller added `function` and `created-by` to every Function: a
        // KafkaTrigger's selector (and a user's kubectl habits) may rely on them.
        merged(
            function.metadata.labels,
            [
                ("function", function.metadata.name), ("created-by", "kubeless"),
                ("app.kubernetes.io/name", function.metadata.name), ("app.kubernetes.io/part-of", "funcd"),
            ])
    }

    static func metadata(name: String, namespace: String?, labels: [(String, String)], annotations: [(String, String)] = [])
        -> Node
    {
        .map([
            ("name", .text(name)), ("namespace", namespace.map(Node.text)), ("labels", .strings(labels)),
            ("annotations", annotations.isEmpty ? nil : .strings(annotations)),
        ])
    }

    // MARK: - Function

    /// kubeless's port: the Service's first `targetPort` when it is a number, else 8080.
    static func port(of function: KubelessResources.Function) -> Int {
        function.service?["ports"]?.array().first?["targetPort"]?.int ?? function.service?["ports"]?.array().first?["port"]?.int
            ?? 8080
    }

    /// The ConfigMap key of each file: its path when that is a valid key, else the path with
    /// `/` and other characters a key cannot hold as `_` (made unique), and the volume's `items`
    /// put the file back at its path.
    static func configMapKeys(_ source: FunctionSource) -> (keys: [String], items: Node?) {
        func isKey(_ text: String) -> Bool {
            !text.isEmpty && text.utf8.allSatisfy { $0 == 0x2D || $0 == 0x2E || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) }
        }
        var keys: [String] = []
        for file in source.files {
            var key = isKey(file.name) ? file.name : String(file.name.map { isKey(String($0)) ? $0 : "_" })
            while keys.contains(key) { key = "_" + key }
            keys.append(key)
        }
        guard zip(keys, source.files).contains(where: { $0 != $1.name }) else { return (keys, nil) }
        return (keys, .list(zip(keys, source.files).map { Node.map([("key", .text($0)), ("path", .text($1.name))]) }))
    }

    func configMap(_ function: KubelessResources.Function, _ source: FunctionSource) -> Node {
        var data: [(String, Node?)] = []
        var binary: [(String, Node?)] = []
        for (key, file) in zip(Self.configMapKeys(source).keys, source.files) {
            if let text = String(validating: file.bytes, as: UTF8.self) {
                data.append((key, .text(text)))
            } else {
                binary.append((key, .text(Data(file.bytes).base64EncodedString())))
            }
        }
        return .map([
            ("apiVersion", "v1"), ("kind", "ConfigMap"),
            (
                "metadata",
                Self.metadata(name: function.metadata.name, namespace: function.metadata.namespace, labels: Self.labels(function))
            ),
            ("data", data.isEmpty ? nil : .map(data)), ("binaryData", binary.isEmpty ? nil : .map(binary)),
        ])
    }

    /// The init container that installs the dependencies into /deps, as in images/k8s.
    static func installer(_ source: FunctionSource) -> Node {
        let (image, command): (String, String) =
            switch source.language {
            case .node:
                (
                    "node:18-bookworm-slim",
                    "if [ -f /kubeless/package.json ]; then cp /kubeless/package.json /deps/ && cd /deps && npm install --omit=dev --no-audit --no-fund; fi"
                )
            case .ruby:
                (
                    "ruby:3.1-slim-bookworm",
                    "if [ -f /kubeless/Gemfile ]; then cp /kubeless/Gemfile /tmp/ && cd /tmp && BUNDLE_PATH=/deps bundle install; fi"
                )
            default:
                (
                    "python:3.11-slim-bookworm",
                    "if [ -s /kubeless/requirements.txt ]; then pip install --no-cache-dir --prefix=/deps -r /kubeless/requirements.txt; fi"
                )
            }
        return .map([
            ("name", "install-dependencies"), ("image", .text(image)),
            ("command", .list([.text("sh"), .text("-c"), .text(command)])),
            ("env", .list([.map([("name", "HOME"), ("value", "/tmp")])])),
            (
                "volumeMounts",
                .list([
                    .map([("name", "function"), ("mountPath", "/kubeless"), ("readOnly", .bool(true))]),
                    .map([("name", "dependencies"), ("mountPath", "/deps")]),
                    .map([("name", "tmp"), ("mountPath", "/tmp")]),
                ])
            ),
            ("securityContext", Self.restricted),
            (
                "resources",
                .map([
                    ("requests", .map([("cpu", "100m"), ("memory", "128Mi")])), ("limits", .map([("memory", "512Mi")])),
                ])
            ),
        ])
    }

    static var restricted: Node {
        .map([
        ("allowPrivilegeEscalation", .bool(false)), ("readOnlyRootFilesystem", .bool(true)),
            ("capabilities", .map([("drop", .list(["ALL"]))])),
        ])
    }

    /// Container fields funcd sets itself; a Function's own values of these are not carried over
    /// (its image was kubeless's runtime; the env and mounts are merged instead).
    static let containerFieldsSet: Set<String> = [
        "name", "image", "imagePullPolicy", "args", "command", "env", "ports", "volumeMounts", "workingDir",
    ]
    /// Pod fields merged rather than replaced.
    static let podFieldsMerged: Set<String> = ["containers", "initContainers", "volumes"]

    func deployment(
        _ function: KubelessResources.Function, _ source: FunctionSource, port: Int, options: Options,
        kafka: [(String, String)]
    ) throws(ConversionError) -> Node {
        let name = function.metadata.name
        let user = function.deployment
        let userPod = user?["spec"]?["template"]?["spec"]
        let userContainer = userPod?["containers"]?.array().first
        if let image = userContainer?["image"]?.string, !image.isEmpty {
            throw ConversionError(
                "Function \(name): spec.deployment names its own image \(image) (a prebuilt kubeless runtime); funcd's image replaces it, so it is not converted")
        }
        let labels = Self.labels(function)
        var env: [Node] = userContainer?["env"]?.array() ?? []
        let funcd: [(String, String)] =
            [
                ("MOD_NAME", source.module), ("FUNC_HANDLER", source.handler), ("FUNC_RUNTIME", source.runtime),
                ("FUNC_TIMEOUT", String(source.timeoutSeconds)), ("FUNC_PORT", String(port)), ("SHUTDOWN_TIMEOUT", "10"),
            ] + kafka
        env.removeAll { node in funcd.contains { $0.0 == node["name"]?.string } || node["name"]?.string == "FUNC_MEMORY_LIMIT" }
        env += funcd.map { Node.map([("name", .text($0.0)), ("value", .text($0.1))]) }
        env.append(
            .map([
                ("name", "FUNC_MEMORY_LIMIT"),
                (
                    "valueFrom",
                    .map([("resourceFieldRef", .map([("containerName", "function"), ("resource", "limits.memory")]))])
                ),
            ]))
        var container: [(String, Node)] = [
            ("name", "function"), ("image", .text("\(options.imagePrefix)funcd-\(source.language.rawValue):\(options.imageTag)")),
            ("imagePullPolicy", "IfNotPresent"), ("args", .list(["serve"])), ("env", .list(env)),
            ("ports", .list([.map([("name", "http"), ("containerPort", .int(port))])])),
            (
                "readinessProbe",
                .map([("httpGet", .map([("path", "/healthz"), ("port", "http")])), ("periodSeconds", .int(5))])
            ),
            (
                "livenessProbe",
                .map([
                    ("httpGet", .map([("path", "/healthz"), ("port", "http")])), ("periodSeconds", .int(10)),
                    ("failureThreshold", .int(3)),
                ])
            ),
            (
                "resources",
                .map([
                    ("requests", .map([("cpu", "100m"), ("memory", "64Mi")])), ("limits", .map([("memory", "256Mi")])),
                ])
            ),
            ("securityContext", Self.restricted),
            (
                "volumeMounts",
                .list(
                    [
                        .map([("name", "function"), ("mountPath", "/kubeless"), ("readOnly", .bool(true))]),
                        .map([("name", "dependencies"), ("mountPath", "/deps"), ("readOnly", .bool(true))]),
                    ] + (userContainer?["volumeMounts"]?.array() ?? []))
            ),
        ]
        // The Function's other container settings (resources, probes, securityContext, …) win.
        for (key, value) in userContainer?.pairs ?? []
        where !Self.containerFieldsSet.contains(key) && KubelessResources.present(value) != nil {
            if let index = container.firstIndex(where: { $0.0 == key }) {
                container[index].1 = value
            } else {
                container.append((key, value))
            }
        }
        var pod: [(String, Node)] = [
            (
                "securityContext",
                .map([
                    ("runAsNonRoot", .bool(true)), ("runAsUser", .int(1000)), ("runAsGroup", .int(1000)),
                    ("fsGroup", .int(1000)), ("seccompProfile", .map([("type", "RuntimeDefault")])),
                ])
            ),
            ("terminationGracePeriodSeconds", .int(15)),
            ("initContainers", .list([Self.installer(source)])),
            ("containers", .list([Node(container.map { (Node($0.0), $0.1) })] + (userPod?["containers"]?.array().dropFirst() ?? []))),
            (
                "volumes",
                .list(
                    [
                        .map([
                            ("name", "function"),
                            ("configMap", .map([("name", .text(name)), ("items", Self.configMapKeys(source).items)])),
                        ]),
                        .map([("name", "dependencies"), ("emptyDir", .map([]))]),
                        .map([("name", "tmp"), ("emptyDir", .map([]))]),
                    ] + (userPod?["volumes"]?.array() ?? []))
            ),
        ]
        // nodeSelector, tolerations, affinity, serviceAccountName, imagePullSecrets, a pod
        // securityContext, …: the Function's.
        for (key, value) in userPod?.pairs ?? [] where !Self.podFieldsMerged.contains(key) && KubelessResources.present(value) != nil {
            if let index = pod.firstIndex(where: { $0.0 == key }) {
                pod[index].1 = value
            } else {
                pod.append((key, value))
            }
        }
        let templateAnnotations = merged(
            Self.annotations(user?["spec"]?["template"]?["metadata"]?["annotations"]),
            [("prometheus.io/scrape", "true"), ("prometheus.io/port", String(port)), ("prometheus.io/path", "/metrics")])
        let templateLabels = merged(KubelessResources.pairs(user?["spec"]?["template"]?["metadata"]?["labels"]), labels)
        return .map([
            ("apiVersion", "apps/v1"), ("kind", "Deployment"),
            (
                "metadata",
                Self.metadata(
                    name: name, namespace: function.metadata.namespace,
                    labels: merged(KubelessResources.pairs(user?["metadata"]?["labels"]), labels),
                    annotations: merged(Self.annotations(user?["metadata"]?["annotations"]), function.metadata.annotations))
            ),
            (
                "spec",
                .map([
                    ("replicas", user?["spec"]?["replicas"] ?? .int(1)),
                    ("selector", .map([("matchLabels", .strings([("app.kubernetes.io/name", name)]))])),
                    (
                        "template",
                        .map([
                            ("metadata", .map([("labels", .strings(templateLabels)), ("annotations", .strings(templateAnnotations))])),
                            ("spec", Node(pod.map { (Node($0.0), $0.1) })),
                        ])
                    ),
                ])
            ),
        ])
    }

    static func annotations(_ node: Node?) -> [(String, String)] { KubelessResources.pairs(node) }

    func service(_ function: KubelessResources.Function, port: Int) -> Node {
        let name = function.metadata.name
        var spec: [(String, Node)] = [
            ("selector", .strings([("app.kubernetes.io/name", name)])),
            ("ports", .list([.map([("name", "http"), ("port", .int(port)), ("targetPort", "http")])])),
        ]
        if let given = function.service {
            // The Function's ports (its port numbers: a trigger may name them) and type; the
            // selector is the generated pods'.
            let ports = given["ports"]?.array() ?? []
            if !ports.isEmpty {
                spec[1].1 = .list(
                    ports.enumerated().map { index, entry in
                        index == 0 ? entry.setting("targetPort", "http").setting("name", "http") : entry
                    })
            }
            for (key, value) in given.pairs where key != "ports" && key != "selector" {
                spec.append((key, value))
            }
        }
        return .map([
            ("apiVersion", "v1"), ("kind", "Service"),
            ("metadata", Self.metadata(name: name, namespace: function.metadata.namespace, labels: Self.labels(function))),
            ("spec", Node(spec.map { (Node($0.0), $0.1) })),
        ])
    }

    /// The Service port a trigger calls.
    static func servicePort(of function: KubelessResources.Function, default port: Int) -> Int {
        function.service?["ports"]?.array().first?["port"]?.int ?? port
    }

    /// `autoscaling/v2` from kubeless's `autoscaling/v2beta1` (its `kubeless autoscale` wrote cpu
    /// and qps metrics).
    mutating func autoscaler(_ function: KubelessResources.Function) throws(ConversionError) -> Node? {
        // kubeless made one only when it had a name and a target (its CLI stores zero values).
        guard let hpa = function.horizontalPodAutoscaler, let spec = hpa["spec"],
            !(hpa["metadata"]?["name"]?.string ?? "").isEmpty, !(spec["scaleTargetRef"]?["name"]?.string ?? "").isEmpty
        else { return nil }
        let name = function.metadata.name
        var metrics: [Node] = []
        for metric in spec["metrics"]?.array() ?? [] {
            switch metric["type"]?.string ?? "" {
            case "Resource":
                let resource = metric["resource"]
                let target: Node
                if let utilization = resource?["targetAverageUtilization"]?.int {
                    target = .map([("type", "Utilization"), ("averageUtilization", .int(utilization))])
                } else if let value = resource?["targetAverageValue"] {
                    target = .map([("type", "AverageValue"), ("averageValue", value)])
                } else if let v2 = resource?["target"] {
                    target = v2
                } else {
                    throw ConversionError("Function \(name): an HPA Resource metric without a target")
                }
                metrics.append(
                    .map([
                        ("type", "Resource"),
                        ("resource", .map([("name", resource?["name"] ?? "cpu"), ("target", target)])),
                    ]))
            case "Object":
                let object = metric["object"]
                let target = object?["targetValue"].map { Node.map([("type", "Value"), ("value", $0)]) } ?? object?["target"]
                metrics.append(
                    .map([
                        ("type", "Object"),
                        (
                            "object",
                            .map([
                                ("describedObject", object?["target"].flatMap { $0["kind"] == nil ? nil : $0 } ?? object?["describedObject"]),
                                ("metric", .map([("name", object?["metricName"] ?? object?["metric"]?["name"] ?? "function_calls")])),
                                ("target", target),
                            ])
                        ),
                    ]))
                warnings.append(
                    "Function \(name): its HPA scales on the custom metric \(object?["metricName"]?.string ?? "function_calls") (kubeless's qps): it needs a metrics adapter serving funcd's function_calls_total")
            default:
                throw ConversionError("Function \(name): an HPA metric of type \(metric["type"]?.string ?? "none") is not converted")
            }
        }
        return .map([
            ("apiVersion", "autoscaling/v2"), ("kind", "HorizontalPodAutoscaler"),
            ("metadata", Self.metadata(name: name, namespace: function.metadata.namespace, labels: Self.labels(function))),
            (
                "spec",
                .map([
                    ("scaleTargetRef", .map([("apiVersion", "apps/v1"), ("kind", "Deployment"), ("name", .text(name))])),
                    ("minReplicas", spec["minReplicas"] ?? .int(1)), ("maxReplicas", spec["maxReplicas"] ?? .int(10)),
                    ("metrics", metrics.isEmpty ? nil : .list(metrics)),
                ])
            ),
        ])
    }

    // MARK: - Triggers

    /// Quoted for `sh`: inside single quotes, each `'` as `'\''`.
    static func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// A CronJob calling the function as kubeless's cronjob trigger did, with `--fail-with-body`,
    /// retries, `Forbid` and a deadline (as `images/k8s/<language>-cron.yaml`).
    func cronJob(_ trigger: KubelessResources.CronJobTrigger) throws(ConversionError) -> Node {
        guard let target = converted[trigger.functionName] else {
            throw ConversionError(
                "CronJobTrigger \(trigger.metadata.name): its function \(trigger.functionName) is not among the converted Functions")
        }
        guard trigger.schedule.split(separator: " ").count == 5 else {
            throw ConversionError("CronJobTrigger \(trigger.metadata.name): schedule \"\(trigger.schedule)\" is not 5 cron fields")
        }
        let name = "trigger-\(trigger.functionName)"
        let timeout = target.source.timeoutSeconds
        var curl = [
            "exec curl --silent --show-error --fail-with-body", "--connect-timeout 10 --max-time \(timeout + 5)",
            "-H \"event-id: ${JOB_UID:-$POD_UID}\"", "-H \"event-time: $(date -u '+%Y-%m-%d %H:%M:%S+00:00')\"",
            "-H \"event-namespace: cronjobtrigger.kubeless.io\"", "-H \"event-type: application/json\"",
            "-H \"Content-Type: application/json\"",
        ]
        if let payload = trigger.payload {
            curl.append("-d \(Self.shellQuoted(try Self.json(payload, trigger: trigger.metadata.name)))")
        }
        curl.append("http://\(trigger.functionName):\(Self.servicePort(of: target.function, default: target.port))/")
        let labels: [(String, String)] = [
            ("app.kubernetes.io/name", name), ("app.kubernetes.io/component", "trigger"), ("app.kubernetes.io/part-of", "funcd"),
        ]
        return .map([
            ("apiVersion", "batch/v1"), ("kind", "CronJob"),
            (
                "metadata",
                Self.metadata(
                    name: name, namespace: trigger.metadata.namespace ?? target.function.metadata.namespace,
                    labels: merged(trigger.metadata.labels, labels), annotations: trigger.metadata.annotations)
            ),
            (
                "spec",
                .map([
                    ("schedule", .text(trigger.schedule)), ("concurrencyPolicy", "Forbid"), ("startingDeadlineSeconds", .int(60)),
                    ("successfulJobsHistoryLimit", .int(3)), ("failedJobsHistoryLimit", .int(1)),
                    (
                        "jobTemplate",
                        .map([
                            (
                                "spec",
                                .map([
                                    ("backoffLimit", .int(2)), ("activeDeadlineSeconds", .int(2 * (timeout + 5) + 50)),
                                    (
                                        "template",
                                        .map([
                                            ("metadata", .map([("labels", .strings(labels))])),
                                            ("spec", Self.triggerPod(curl.joined(separator: " "))),
                                        ])
                                    ),
                                ])
                            )
                        ])
                    ),
                ])
            ),
        ])
    }

    static func triggerPod(_ command: String) -> Node {
        .map([
            ("restartPolicy", "Never"), ("automountServiceAccountToken", .bool(false)),
            (
                "securityContext",
                .map([
                    ("runAsNonRoot", .bool(true)), ("runAsUser", .int(65534)), ("runAsGroup", .int(65534)),
                    ("seccompProfile", .map([("type", "RuntimeDefault")])),
                ])
            ),
            (
                "containers",
                .list([
                    .map([
                        ("name", "trigger"), ("image", "curlimages/curl:8.11.1"), ("imagePullPolicy", "IfNotPresent"),
                        (
                            "env",
                            .list([
                                .map([
                                    ("name", "JOB_UID"),
                                    (
                                        "valueFrom",
                                        .map([
                                            (
                                                "fieldRef",
                                                .map([("fieldPath", "metadata.labels['batch.kubernetes.io/controller-uid']")])
                                            )
                                        ])
                                    ),
                                ]),
                                .map([
                                    ("name", "POD_UID"),
                                    ("valueFrom", .map([("fieldRef", .map([("fieldPath", "metadata.uid")]))])),
                                ]),
                            ])
                        ),
                        ("command", .list(["/bin/sh", "-c"])), ("args", .list([.text(command)])),
                        (
                            "resources",
                            .map([
                                ("requests", .map([("cpu", "10m"), ("memory", "16Mi")])),
                                ("limits", .map([("cpu", "100m"), ("memory", "32Mi")])),
                            ])
                        ),
                        ("securityContext", restricted),
                    ])
                ])
            ),
        ])
    }

    /// A payload as compact JSON.
    static func json(_ node: Node, trigger: String) throws(ConversionError) -> String {
        guard JSONSerialization.isValidJSONObject([node.any]),
            let data = try? JSONSerialization.data(withJSONObject: node.any, options: [.sortedKeys, .fragmentsAllowed]),
            let text = String(data: data, encoding: .utf8)
        else { throw ConversionError("CronJobTrigger \(trigger): its payload is not JSON") }
        return text
    }

    /// An Ingress (`networking.k8s.io/v1`) as kubeless's http trigger controller made one, its
    /// gateway's annotations included; the backend is the Service's port.
    func ingress(_ trigger: KubelessResources.HTTPTrigger) throws(ConversionError) -> Node {
        let name = trigger.metadata.name
        guard let target = converted[trigger.functionName] else {
            throw ConversionError("HTTPTrigger \(name): its function \(trigger.functionName) is not among the converted Functions")
        }
        guard !trigger.hostName.isEmpty else {
            throw ConversionError(
                "HTTPTrigger \(name): no host-name (kubeless made <function>.<cluster address>.nip.io; name the host)")
        }
        if trigger.tlsACME && !trigger.tlsSecret.isEmpty {
            throw ConversionError("HTTPTrigger \(name): tls and tls-secret together (kubeless refused them too)")
        }
        let gateway = trigger.gateway.isEmpty ? "nginx" : trigger.gateway
        var annotations: [(String, String)] = []
        switch gateway {
        case "nginx": annotations.append(("nginx.ingress.kubernetes.io/rewrite-target", "/"))
        case "traefik", "kong": break
        default: throw ConversionError("HTTPTrigger \(name): gateway \(gateway) is not nginx, traefik or kong")
        }
        annotations = merged(annotations, trigger.metadata.annotations)
        if trigger.corsEnable {
            annotations.append((gateway == "nginx" ? "nginx.ingress.kubernetes.io/enable-cors" : "ingress.kubernetes.io/enable-cors", "true"))
        }
        if !trigger.basicAuthSecret.isEmpty {
            switch gateway {
            case "nginx":
                annotations += [
                    ("nginx.ingress.kubernetes.io/auth-secret", trigger.basicAuthSecret), ("nginx.ingress.kubernetes.io/auth-type", "basic"),
                ]
            case "traefik":
                annotations += [("ingress.kubernetes.io/auth-secret", trigger.basicAuthSecret), ("ingress.kubernetes.io/auth-type", "basic")]
            default:
                throw ConversionError("HTTPTrigger \(name): basic-auth-secret with the kong gateway (kubeless did not support it either)")
            }
        }
        var tls: Node?
        if !trigger.tlsSecret.isEmpty {
            tls = .list([.map([("hosts", .list([.text(trigger.hostName)])), ("secretName", .text(trigger.tlsSecret))])])
        } else if trigger.tlsACME {
            annotations += [("kubernetes.io/tls-acme", "true"), ("nginx.ingress.kubernetes.io/ssl-redirect", "true")]
            tls = .list([.map([("hosts", .list([.text(trigger.hostName)])), ("secretName", .text("\(name)-tls"))])])
        }
        let path = "/" + trigger.path.drop(while: { $0 == "/" })
        let port = Self.servicePort(of: target.function, default: target.port)
        return .map([
            ("apiVersion", "networking.k8s.io/v1"), ("kind", "Ingress"),
            (
                "metadata",
                Self.metadata(
                    name: name, namespace: trigger.metadata.namespace ?? target.function.metadata.namespace,
                    labels: merged(trigger.metadata.labels, [("app.kubernetes.io/part-of", "funcd")]), annotations: annotations)
            ),
            (
                "spec",
                .map([
                    ("ingressClassName", .text(gateway)), ("tls", tls),
                    (
                        "rules",
                        .list([
                            .map([
                                ("host", .text(trigger.hostName)),
                                (
                                    "http",
                                    .map([
                                        (
                                            "paths",
                                            .list([
                                                .map([
                                                    ("path", .text(path)), ("pathType", "Prefix"),
                                                    (
                                                        "backend",
                                                        .map([
                                                            (
                                                                "service",
                                                                .map([
                                                                    ("name", .text(trigger.functionName)),
                                                                    ("port", .map([("number", .int(port))])),
                                                                ])
                                                            )
                                                        ])
                                                    ),
                                                ])
                                            ])
                                        )
                                    ])
                                ),
                            ])
                        ])
                    ),
                ])
            ),
        ])
    }

    /// `KAFKA_BROKERS`, `KAFKA_TOPICS` and `KAFKA_OFFSET_RESET` per function a KafkaTrigger selects.
    mutating func kafkaVariables(_ resources: KubelessResources, options: Options) -> [String: [(String, String)]] {
        var topics: [String: [String]] = [:]
        for trigger in resources.kafkaTriggers {
            let name = trigger.metadata.name
            guard !trigger.topic.isEmpty else {
                errors.append("KafkaTrigger \(name): no topic")
                continue
            }
            guard let brokers = options.kafkaBrokers, !brokers.isEmpty, !brokers.contains(where: \.isWhitespace) else {
                errors.append(
                    "KafkaTrigger \(name): give --kafka-brokers host:port (kubeless's controller had the broker in its own KAFKA_BROKERS)")
                continue
            }
            let selected = resources.functions.filter { Self.selects(trigger, Self.labels($0)) }
            if selected.isEmpty {
                errors.append("KafkaTrigger \(name): its functionSelector selects none of the Functions given")
            }
            for function in selected { topics[function.metadata.name, default: []].append(trigger.topic) }
        }
        // A new consumer group starts at the newest message, as kubeless's sarama consumer did:
        // funcd's default (earliest) would handle the topic's whole history again.
        return topics.mapValues { list in
            [
                ("KAFKA_BROKERS", options.kafkaBrokers ?? ""), ("KAFKA_TOPICS", list.joined(separator: ",")),
                ("KAFKA_OFFSET_RESET", "latest"),
            ]
        }
    }

    static func selects(_ trigger: KubelessResources.KafkaTrigger, _ labels: [(String, String)]) -> Bool {
        func value(_ key: String) -> String? { labels.first { $0.0 == key }?.1 }
        guard !trigger.matchLabels.isEmpty || !trigger.matchExpressions.isEmpty else { return false }
        for (key, wanted) in trigger.matchLabels where value(key) != wanted { return false }
        for expression in trigger.matchExpressions {
            let found = value(expression.key)
            switch expression.operator {
            case "In": if !(found.map(expression.values.contains) ?? false) { return false }
            case "NotIn": if found.map(expression.values.contains) ?? false { return false }
            case "Exists": if found == nil { return false }
            case "DoesNotExist": if found != nil { return false }
            default: return false
            }
        }
        return true
    }
}
