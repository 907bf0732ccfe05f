import Foundation
import FuncdCore
import Testing
import Yams

@testable import FuncdKubeless

@Suite("kubeless resources to funcd manifests")
struct ConversionTests {
    static func examples() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("examples/kubeless/functions.yaml"), encoding: .utf8)
    }

    static func convert(_ text: String, brokers: String? = "kafka:9092") -> Conversion {
        var resources = KubelessResources()
        resources.read(text, source: "test.yaml")
        var options = Conversion.Options()
        options.kafkaBrokers = brokers
        return Conversion(resources, options: options)
    }

    static func documents(_ conversion: Conversion, kind: String) -> [Node] {
        conversion.documents.filter { $0["kind"]?.string == kind }
    }

    static func env(_ deployment: Node) -> [String: String] {
        let container = deployment["spec"]?["template"]?["spec"]?["containers"]?.array().first
        var found: [String: String] = [:]
        for variable in container?["env"]?.array() ?? [] {
            found[variable["name"]?.string ?? ""] = variable["value"]?.string ?? "(from)"
        }
        return found
    }

    @Test("kubeless's examples, as kubectl prints them: every object converted, versions moved with warnings")
    func examples() throws {
        let conversion = Self.convert(try Self.examples())
        #expect(conversion.errors.isEmpty, "\(conversion.errors)")
        #expect(Self.documents(conversion, kind: "ConfigMap").count == 6)
        #expect(Self.documents(conversion, kind: "Deployment").count == 6)
        #expect(Self.documents(conversion, kind: "Service").count == 6)
        #expect(Self.documents(conversion, kind: "HorizontalPodAutoscaler").isEmpty, "zero-valued HPAs are none")
        #expect(Self.documents(conversion, kind: "CronJob").count == 1)
        #expect(Self.documents(conversion, kind: "Ingress").count == 1)
        #expect(conversion.warnings.count == 6, "\(conversion.warnings)")
        #expect(conversion.warnings.contains { $0.contains("python3.7 runs as python3.11") }, "\(conversion.warnings)")
        let yaml = try conversion.yaml()
        #expect(Array(try Yams.compose_all(yaml: yaml)).count == conversion.documents.count)
    }

    @Test("a Function: the module file named after the handler, the kubeless variables, the Service's port")
    func function() throws {
        let conversion = Self.convert(try Self.examples())
        let map = try #require(Self.documents(conversion, kind: "ConfigMap").first { $0["metadata"]?["name"]?.string == "get-python" })
        #expect(map["data"]?["helloget.py"]?.string == "def foo(event, context):\n    return \"hello world\"\n")
        let deployment = try #require(Self.documents(conversion, kind: "Deployment").first { $0["metadata"]?["name"]?.string == "get-python" })
        let env = Self.env(deployment)
        #expect(env["MOD_NAME"] == "helloget" && env["FUNC_HANDLER"] == "foo" && env["FUNC_RUNTIME"] == "python3.11")
        #expect(env["FUNC_TIMEOUT"] == "180" && env["FUNC_PORT"] == "8080" && env["FUNC_MEMORY_LIMIT"] == "(from)")
        let container = deployment["spec"]?["template"]?["spec"]?["containers"]?.array().first
        #expect(container?["image"]?.string == "funcd-python:latest")
        #expect(container?["imagePullPolicy"]?.string == "IfNotPresent", "kubeless's Always was for its own runtime image")
        // The Kafka trigger selected post-nodejs by its labels.
        let node = try #require(Self.documents(conversion, kind: "Deployment").first { $0["metadata"]?["name"]?.string == "post-nodejs" })
        #expect(Self.env(node)["KAFKA_TOPICS"] == "orders" && Self.env(node)["KAFKA_BROKERS"] == "kafka:9092")
        #expect(Self.env(deployment)["KAFKA_TOPICS"] == nil)
    }

    @Test("triggers: the CronJob posts the payload with kubeless's headers; the Ingress has its host, path, TLS and CORS")
    func triggers() throws {
        let conversion = Self.convert(try Self.examples())
        let cron = try #require(Self.documents(conversion, kind: "CronJob").first)
        #expect(cron["metadata"]?["name"]?.string == "trigger-post-python")
        let command = cron["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"]?["containers"]?.array().first?["args"]?.array().first?.string ?? ""
        #expect(command.contains("-d '{\"it-s\":\"alive\"}'") && command.contains("http://post-python:8080/"), "\(command)")
        #expect(command.contains("event-namespace: cronjobtrigger.kubeless.io") && command.contains("--fail-with-body"))
        let ingress = try #require(Self.documents(conversion, kind: "Ingress").first)
        let rule = ingress["spec"]?["rules"]?.array().first
        #expect(rule?["host"]?.string == "get-python.example.com")
        #expect(rule?["http"]?["paths"]?.array().first?["path"]?.string == "/hello")
        #expect(ingress["spec"]?["tls"]?.array().first?["secretName"]?.string == "get-python-tls")
        #expect(ingress["metadata"]?["annotations"]?["nginx.ingress.kubernetes.io/enable-cors"]?.string == "true")
    }

    @Test("what cannot be converted is one line each; the rest converts")
    func errors() throws {
        let text = """
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: gofn}
            spec: {handler: main.Handler, runtime: go1.14, function: "package main"}
            ---
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: remote}
            spec: {handler: a.b, runtime: python3.8, function: "https://example.com/a.py", function-content-type: url}
            ---
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: bad-sum}
            spec: {handler: a.b, runtime: python3.8, function: "x = 1", checksum: "sha256:00"}
            ---
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: ok}
            spec: {handler: a.b, runtime: ruby3.1, function: "def b(e, c) 1 end", timeout: "5"}
            ---
            apiVersion: kubeless.io/v1beta1
            kind: KafkaTrigger
            metadata: {name: nobroker}
            spec: {topic: t, functionSelector: {matchLabels: {function: ok}}}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {name: stray}
            """
        let conversion = Self.convert(text, brokers: nil)
        #expect(conversion.errors.count == 5, "\(conversion.errors)")
        #expect(conversion.errors.contains { $0.contains("go1.14") && $0.contains("gofn") })
        #expect(conversion.errors.contains { $0.contains("https://example.com/a.py") })
        #expect(conversion.errors.contains { $0.contains("bad-sum") && $0.contains("checksum") })
        #expect(conversion.errors.contains { $0.contains("--kafka-brokers") })
        #expect(conversion.errors.contains { $0.contains("Pod stray") })
        #expect(Self.documents(conversion, kind: "Deployment").count == 1)
        #expect(conversion.warnings.isEmpty, "ruby3.1 is what funcd embeds: \(conversion.warnings)")
    }

    @Test("spec.deployment overrides carry over: env first, resources, volumes, nodeSelector, annotations, replicas")
    func overrides() throws {
        let text = """
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: tuned, annotations: {team: payments}}
            spec:
              handler: app.run
              runtime: python3.11
              function: "def run(e, c): return 'ok'"
              deps: "requests==2.31.0"
              deployment:
                metadata: {labels: {tier: backend}}
                spec:
                  replicas: 3
                  template:
                    metadata: {annotations: {sidecar.istio.io/inject: "false"}}
                    spec:
                      nodeSelector: {disktype: ssd}
                      volumes: [{name: secret-vol, secret: {secretName: api-key}}]
                      containers:
                        - env: [{name: API_URL, value: "https://api"}, {name: FUNC_TIMEOUT, value: "1"}]
                          resources: {limits: {memory: 1Gi, cpu: "2"}}
                          volumeMounts: [{name: secret-vol, mountPath: /secret}]
              horizontalPodAutoscaler:
                metadata: {name: tuned}
                spec:
                  minReplicas: 2
                  maxReplicas: 7
                  scaleTargetRef: {apiVersion: apps/v1beta1, kind: Deployment, name: tuned}
                  metrics: [{type: Resource, resource: {name: cpu, targetAverageUtilization: 60}}]
            """
        let conversion = Self.convert(text)
        #expect(conversion.errors.isEmpty, "\(conversion.errors)")
        let deployment = try #require(Self.documents(conversion, kind: "Deployment").first)
        #expect(deployment["spec"]?["replicas"]?.int == 3)
        #expect(deployment["metadata"]?["labels"]?["tier"]?.string == "backend")
        #expect(deployment["metadata"]?["annotations"]?["team"]?.string == "payments")
        let pod = deployment["spec"]?["template"]?["spec"]
        #expect(pod?["nodeSelector"]?["disktype"]?.string == "ssd")
        #expect(pod?["volumes"]?.array().contains { $0["name"]?.string == "secret-vol" } == true)
        #expect(deployment["spec"]?["template"]?["metadata"]?["annotations"]?["sidecar.istio.io/inject"]?.string == "false")
        let container = pod?["containers"]?.array().first
        #expect(container?["resources"]?["limits"]?["memory"]?.string == "1Gi")
        #expect(container?["volumeMounts"]?.array().contains { $0["mountPath"]?.string == "/secret" } == true)
        let env = container?["env"]?.array().compactMap { $0["name"]?.string } ?? []
        #expect(env.first == "API_URL" && env.filter { $0 == "FUNC_TIMEOUT" }.count == 1, "\(env)")
        let map = try #require(Self.documents(conversion, kind: "ConfigMap").first)
        #expect(map["data"]?["requirements.txt"]?.string == "requests==2.31.0")
        let hpa = try #require(Self.documents(conversion, kind: "HorizontalPodAutoscaler").first)
        #expect(hpa["apiVersion"]?.string == "autoscaling/v2" && hpa["spec"]?["maxReplicas"]?.int == 7)
        #expect(hpa["spec"]?["metrics"]?.array().first?["resource"]?["target"]?["averageUtilization"]?.int == 60)
        #expect(hpa["spec"]?["scaleTargetRef"]?["apiVersion"]?.string == "apps/v1")
    }

    @Test("base64 code, and strings that look like numbers stay strings in the YAML")
    func encodings() throws {
        let code = "def handler(e, c):\n    return 'é'\n"
        let text = """
            apiVersion: kubeless.io/v1beta1
            kind: Function
            metadata: {name: encoded}
            spec:
              handler: mod.handler
              runtime: python3.6
              function-content-type: base64
              function: \(Data(code.utf8).base64EncodedString())
              checksum: sha256:\(SHA256.hex(Array(code.utf8)))
              timeout: "42"
            """
        let conversion = Self.convert(text)
        #expect(conversion.errors.isEmpty, "\(conversion.errors)")
        let yaml = try conversion.yaml()
        #expect(yaml.contains("value: \"42\""), "\(yaml)")
        #expect(yaml.contains("return 'é'"), "\(yaml)")
    }

    @Test("SHA-256 agrees with known digests")
    func sha256() {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            SHA256.hex(Array(String(repeating: "a", count: 1000).utf8))
                == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
