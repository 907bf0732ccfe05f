import FuncdCore
import Testing

@Suite("String+ASCII")
struct StringASCIITests {
    @Test("equalsIgnoringASCIICase folds A-Z only, and only on the receiver's side")
    func equalsIgnoringASCIICase() {
        #expect("Content-Type".equalsIgnoringASCIICase("content-type"))
        #expect("CONTENT-TYPE".equalsIgnoringASCIICase("content-type"))
        #expect("content-type".equalsIgnoringASCIICase("content-type"))
        #expect(!"Content-Typf".equalsIgnoringASCIICase("content-type"))
        #expect(!"Content-Typ".equalsIgnoringASCIICase("content-type"))
        #expect(!"Content-Types".equalsIgnoringASCIICase("content-type"))
        #expect(!"".equalsIgnoringASCIICase("x"))
        #expect("".equalsIgnoringASCIICase(""))
        // '[' is 'Z' + 1 and '@' is 'A' - 1: neither is folded onto a letter.
        #expect(!"[".equalsIgnoringASCIICase("{"))
        #expect(!"@".equalsIgnoringASCIICase("`"))
        // Bytes past ASCII compare as they are: no Unicode case folding.
        #expect("Caf\u{e9}".equalsIgnoringASCIICase("caf\u{e9}"))
        #expect(!"CAF\u{c9}".equalsIgnoringASCIICase("caf\u{e9}"))
        // A string sliced out of another, and one longer than the small-string form, alike.
        let long = "X-Some-Rather-Long-Header-Name-Beyond-Fifteen-Bytes"
        #expect(String(long.dropFirst(2)).equalsIgnoringASCIICase("some-rather-long-header-name-beyond-fifteen-bytes"))
        #expect(!long.equalsIgnoringASCIICase(long))
    }
}
