/// A call's method, target, packed fields (``HeaderPacking``) and body, lent to C as pointers
/// and lengths for the length of one closure: the one place where Node's and Ruby's hosts turn
/// Swift storage into the arguments of their C glue. Nothing is copied; nothing may be kept.
public struct CallBuffers {
    public let method: UnsafeBufferPointer<CChar>
    public let target: UnsafeBufferPointer<CChar>
    public let fields: UnsafeBufferPointer<CChar>
    public let body: UnsafeBufferPointer<UInt8>

    public static func lend<Result>(
        _ invocation: Invocation, fields: [UInt8], _ use: (CallBuffers) -> Result
    ) -> Result {
        var method = invocation.method
        var target = invocation.target
        return method.withUTF8 { method in
            target.withUTF8 { target in
                fields.withUnsafeBufferPointer { fields in
                    invocation.body.withUnsafeBufferPointer { body in
                        method.withMemoryRebound(to: CChar.self) { method in
                            target.withMemoryRebound(to: CChar.self) { target in
                                fields.withMemoryRebound(to: CChar.self) { fields in
                                    use(CallBuffers(method: method, target: target, fields: fields, body: body))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
