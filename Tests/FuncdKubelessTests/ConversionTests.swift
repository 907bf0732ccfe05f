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
        #expect(Self.documents(conversion, kind: "ConfigMap").count == 8)
        #expect(Self.documents(conversion, kind: "Deployment").count == 8)
        #expect(Self.documents(conversion, kind: "Service").count == 8)
        #expect(Self.documents(conversion, kind: "HorizontalPodAutoscaler").isEmpty, "zero-valued HPAs are none")
        #expect(Self.documents(conversion, kind: "CronJob").count == 1)
        #expect(Self.documents(conversion, kind: "Ingress").count == 1)
        #expect(conversion.warnings.count == 8, "\(conversion.warnings)")
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
        #expect(Self.env(node)["KAFKA_OFFSET_RESET"] == "latest")
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

@Suite("A Function's archive: zip and tar.gz unpacked, bounded, kept inside the code folder")
struct FunctionArchiveTests {
    static func bytes(_ base64: String) -> [UInt8] { Array(Data(base64Encoded: base64)!) }

    static let stored = bytes("UEsDBBQAAAAAAHqqhl2bMhReFgAAABYAAAAEAAAAYS5weWRlZiBoKGUsIGMpOiByZXR1cm4gMQpQSwMEFAAAAAAAeqqGXYMW3IwBAAAAAQAAAAkAAABzdWIvYi50eHR4UEsBAhQDFAAAAAAAeqqGXZsyFF4WAAAAFgAAAAQAAAAAAAAAAAAAAIABAAAAAGEucHlQSwECFAMUAAAAAAB6qoZdgxbcjAEAAAABAAAACQAAAAAAAAAAAAAAgAE4AAAAc3ViL2IudHh0UEsFBgAAAAACAAIAaQAAAGAAAAAAAA==")
    static let slip = bytes("UEsDBBQAAAAIAHqqhl2DFtyMAwAAAAEAAAAKAAAALi4vZXZpbC5weasAAFBLAQIUAxQAAAAIAHqqhl2DFtyMAwAAAAEAAAAKAAAAAAAAAAAAAACAAQAAAAAuLi9ldmlsLnB5UEsFBgAAAAABAAEAOAAAACsAAAAAAA==")
    static let bomb = bytes("UEsDBBQAAAAIAHqqhl3GT3J5+QsAAAAAMAAGAAAAYmlnLnB57cEBDQAAAMKg909tDjegAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAvg1QSwECFAMUAAAACAB6qoZdxk9yefkLAAAAADAABgAAAAAAAAAAAAAAgAEAAAAAYmlnLnB5UEsFBgAAAAABAAEANAAAAB0MAAAAAA==")
    static let bzip2 = bytes("QlpoOTFBWSZTWSMEBNkAAG1bgMmAYAF3AAAEYABeYAgIIABUNIAGgAAkkQwjEaGR9mQ5CDOgIRZvLRK7y2QIYGO6PE9hF3EE0xExhrUC/Mn3vPegREB8XckU4UJAjBATZA==")
    static let tarGz = bytes("H4sIAHnRFWsC/+3VQWrDMBAFUK11itm5pcWWWmNDoWcxbj1JBIpkpkqb3D6KoQSSRenCLqH/bWaQBFp8pCmrUdjHfijHg5qJyZq6nmp2WY19PvfTujWmrRUZtYDdR+olX6/+p5XELXn3Vq6FObmwJrcdoyRKvE9a64FXtOnD4Fnu+JNDeqT3GE6b9y+aMuG0kzAdpwcq6CuKHwqt4CaUVQ6/mveOn97/dd80tcH7Xy7/rnPBpa6bZwj8On+bv/8W+S+X//fn/0f52/Yif2ueMP8XMc3tVyo27H3E2AYAAAAAAAAAAAAAAAAAuFlH2n4EKwAoAAA=")
    static let deflated = bytes("UEsDBBQAAAAIAHqqhl2DzkfmZgAAAIQAAAAIAAAAaW5kZXguanNTLy1OVSguKcpMLlG35uLKzU8pzUnVS60oyC8qKVawVajmUgCCjNScnHz31BIrhaLUwtLMolQNdT19sGB6aom6pl5afr4OQmF4ZkmGS2JJIqbqcqBMClAGqCUjMS8lJ7VIh6uWCwBQSwMEFAAAAAgAeqqGXS7yYmdQAAAAVwAAAAsAAABoZWxsb2dldC5qcx3KwQmAMAwF0Hun+J6qIA6gOE2bohATqakWxN0Vz+9tGgvTQHXXbAdm3A5IqiNSkWCrClo6SaxHUDGq1v0FyGQlC/xCzIpLM8fGTx897nEvUEsDBBQAAAAIAHqqhl1V8q+kVwAAAGsAAAAQAAAAaGVsbG93aXRoZGF0YS5qcyXLQQqAIBBG4b2n+JcJ4gESu4vkUAtzQqcQortXtv14b+N4JLLUdi5S4XEpYA05JiojBjopi8HMWaiJhp96gE8qv2Pi5Y+0615IjpLRycYg4ePbqNupB1BLAQIUAxQAAAAIAHqqhl2DzkfmZgAAAIQAAAAIAAAAAAAAAAAAAACAAQAAAABpbmRleC5qc1BLAQIUAxQAAAAIAHqqhl0u8mJnUAAAAFcAAAALAAAAAAAAAAAAAACAAYwAAABoZWxsb2dldC5qc1BLAQIUAxQAAAAIAHqqhl1V8q+kVwAAAGsAAAAQAAAAAAAAAAAAAACAAQUBAABoZWxsb3dpdGhkYXRhLmpzUEsFBgAAAAADAAMArQAAAIoBAAAAAA==")

    @Test("zip, stored and deflated, with folders; tar.gz with a folder entry")
    func unpacks() throws {
        let plain = try FunctionArchive.unpack(Self.stored, zip: true, function: "f")
        #expect(plain.map(\.name) == ["a.py", "sub/b.txt"])
        #expect(String(decoding: plain[0].bytes, as: UTF8.self) == "def h(e, c): return 1\n")
        let zipped = try FunctionArchive.unpack(Self.deflated, zip: true, function: "f")
        #expect(zipped.map(\.name) == ["index.js", "helloget.js", "hellowithdata.js"])
        #expect(String(decoding: zipped[1].bytes, as: UTF8.self).contains("hello world!"))
        let tarred = try FunctionArchive.unpack(Self.tarGz, zip: false, function: "f")
        #expect(tarred.map(\.name) == ["preload.py", "lib/__init__.py", "lib/greeting.py"])
    }

    @Test("refused: a path out of the folder, more than a ConfigMap holds, bzip2, not an archive")
    func refuses() {
        #expect(throws: ConversionError.self) { try FunctionArchive.unpack(Self.slip, zip: true, function: "f") }
        do {
            _ = try FunctionArchive.unpack(Self.bomb, zip: true, function: "f")
            Issue.record("a 3 MiB entry was unpacked")
        } catch {
            #expect(error.description.contains("more than a ConfigMap"), "\(error)")
        }
        do {
            _ = try FunctionArchive.unpack(Self.bzip2, zip: false, function: "f")
            Issue.record("bzip2 was read")
        } catch {
            #expect(error.description.contains("bzip2 or xz"), "\(error)")
        }
        #expect(throws: ConversionError.self) { try FunctionArchive.unpack(Array("not a zip at all, really".utf8), zip: true, function: "f") }
        #expect(throws: ConversionError.self) { try FunctionArchive.unpack(Array(Self.deflated.prefix(200)), zip: true, function: "f") }
    }

    @Test("a nested file becomes a ConfigMap key the volume puts back at its path")
    func nestedKeys() throws {
        let conversion = ConversionTests.convert(try ConversionTests.examples())
        let deployment = try #require(ConversionTests.documents(conversion, kind: "Deployment").first { $0["metadata"]?["name"]?.string == "hello-tgz" })
        let volume = deployment["spec"]?["template"]?["spec"]?["volumes"]?.array().first { $0["name"]?.string == "function" }
        let items = volume?["configMap"]?["items"]?.array() ?? []
        #expect(items.contains { $0["key"]?.string == "lib_greeting.py" && $0["path"]?.string == "lib/greeting.py" }, "\(items)")
        let map = try #require(ConversionTests.documents(conversion, kind: "ConfigMap").first { $0["metadata"]?["name"]?.string == "hello-tgz" })
        #expect(map["data"]?["lib_greeting.py"]?.string == "text = 'hello'\n")
    }
}
