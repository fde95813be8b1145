import Testing
@testable import TaskAPI
@testable import TaskModel

@Suite("JSON scanner")
struct JSONScannerTests {
    private func members(_ text: String) throws -> [JSONMember] {
        try JSONScanner.members(ofObject: Array(text.utf8))
    }

    private func slice(_ text: String, _ member: JSONMember) -> String {
        String(decoding: Array(text.utf8)[member.range], as: UTF8.self)
    }

    @Test func findsMembersAndByteExactValueRanges() throws {
        let text = #"  { "a" : 1 , "solution":{"x":[1,2,{"y":"}]\""}],"n":-0.5e+10} ,"z":null }  "#
        let found = try members(text)
        #expect(found.map(\.key) == ["a", "solution", "z"])
        #expect(found.map(\.kind) == [.number, .object, .null])
        #expect(slice(text, found[1]) == #"{"x":[1,2,{"y":"}]\""}],"n":-0.5e+10}"#)
    }

    @Test func keysWithEscapesAreDecoded() throws {
        let found = try members(#"{"err\u006frId":0,"a\"b":1,"\ud83d\ude00":2}"#)
        #expect(found.map(\.key) == ["errorId", "a\"b", "😀"])
    }

    @Test func decodesEveryEscape() throws {
        let text = #""q\" b\\ s\/ \b\f\n\r\t é\u00e9 \ud83d\ude00 lone\ud800x""#
        let bytes = Array(text.utf8)
        let decoded = try JSONScanner.decodeString(bytes, 0..<bytes.count)
        #expect(decoded == "q\" b\\ s/ \u{8}\u{c}\n\r\t éé 😀 lone\u{FFFD}x")
    }

    @Test(arguments: [
        "",                                  // empty
        "[]",                                // not an object
        "{",                                 // truncated
        #"{"a":"#,                           // truncated after colon
        #"{"a":"abc"#,                       // unterminated string
        #"{"a":"\"}"#,                       // escaped quote leaves string open
        #"{"a":1,}"#,                        // trailing comma
        #"{"a" 1}"#,                         // missing colon
        #"{a:1}"#,                           // unquoted key
        #"{"a":01}"#,                        // leading zero
        #"{"a":1.}"#,                        // bare dot
        #"{"a":-}"#,                         // bare minus
        #"{"a":1e}"#,                        // empty exponent
        #"{"a":tru}"#,                       // bad literal
        #"{"a":"\x"}"#,                      // bad escape
        #"{"a":"\u12G4"}"#,                  // bad unicode escape
        "{\"a\":\"tab\there\"}",             // raw control character
        #"{"a":[1,2}"#,                      // mismatched bracket
        #"{"a":{"b":1]}"#,                   // mismatched brace
        #"{"a":1} x"#,                       // trailing garbage
        #"{"a":1}{"b":2}"#,                  // two documents
        "<html>502</html>",                  // HTML
    ])
    func rejectsInvalid(_ text: String) {
        #expect(throws: TaskAPIError.self) { try members(text) }
    }

    @Test func rejectsExcessiveNesting() {
        let deep = "{\"a\":" + String(repeating: "[", count: 500) + String(repeating: "]", count: 500) + "}"
        #expect(throws: TaskAPIError.self) { try members(deep) }
        let fine = "{\"a\":" + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "}"
        #expect(throws: Never.self) { try members(fine) }
    }

    @Test func depthBoundIsExact() throws {
        func nested(_ n: Int) -> [UInt8] { Array((String(repeating: "[", count: n) + String(repeating: "]", count: n)).utf8) }
        #expect(try JSONScanner.validate(nested(JSONScanner.defaultMaxDepth)) == .array)
        #expect(throws: TaskAPIError.self) { try JSONScanner.validate(nested(JSONScanner.defaultMaxDepth + 1)) }
        #expect(try JSONScanner.validate(nested(3), maxDepth: 3) == .array)
        #expect(throws: TaskAPIError.self) { try JSONScanner.validate(nested(4), maxDepth: 3) }
    }

    @Test("every cut of a document is rejected, and mutated documents never trap and get one verdict from every entry point")
    func truncatedAndMutatedInput() throws {
        let valid = Array(#"{"errorId":0,"status":"ready","solution":{"t":"a\u00e9\n\ud83d\ude00","n":[-1.5e3,0,true,false,null,{}]},"taskId":12}"#.utf8)
        #expect(try JSONScanner.members(ofObject: valid).count == 4)
        for cut in 0..<valid.count {
            let prefix = Array(valid[..<cut])
            #expect(throws: TaskAPIError.self) { try JSONScanner.members(ofObject: prefix) }
            #expect(!prefix.withUnsafeBytes { JSONScanner.isObject($0) })
        }
        var random = SplitMix64(seed: 8259)
        for _ in 0..<5_000 {
            var mutated = valid
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                mutated[Int.random(in: 0..<mutated.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let asMembers = try? JSONScanner.members(ofObject: mutated)
            let asValue = try? JSONScanner.validate(mutated)
            let asObject = mutated.withUnsafeBytes { JSONScanner.isObject($0) }
            #expect((asMembers != nil) == asObject)
            #expect((asValue == .object) == asObject)
        }
    }

    @Test func validatesStandaloneValues() throws {
        #expect(try JSONScanner.validate(Array(" 12.5e-3 ".utf8)) == .number)
        #expect(try JSONScanner.validate(Array(#"["a",{"b":null}]"#.utf8)) == .array)
        #expect(throws: TaskAPIError.self) { try JSONScanner.validate(Array("1 2".utf8)) }
    }

    @Test func writerRoundTripsThroughScanner() throws {
        let nasty = "quote\" back\\ nl\n tab\t ctl\u{1} é 😀 </script>"
        var out: [UInt8] = []
        JSONEscaping.appendString(nasty, to: &out)
        #expect(try JSONScanner.decodeString(out, 0..<out.count) == nasty)
    }

    @Test("unescape: every escape, surrogate pairs, lone surrogates, and malformed input without a crash")
    func unescape() {
        func text(_ inner: String) -> String {
            Array(inner.utf8).withUnsafeBytes { JSONEscaping.unescape($0) }
        }
        #expect(text(#"a\"b\\c\/d\b\f\n\r\t"#) == "a\"b\\c/d\u{08}\u{0C}\n\r\t")
        #expect(text(#"\u00e9\ud83d\ude00"#) == "é😀")
        #expect(text(#"\ud83d x"#) == "\u{FFFD} x", "a lone high surrogate")
        #expect(text(#"\ude00"#) == "\u{FFFD}", "a lone low surrogate")
        #expect(text(#"plain"#) == "plain")
        // Never produced by a scanner, but must not read out of bounds.
        #expect(text(#"\u12"#) == "\u{FFFD}12")
        #expect(text(#"end\"#) == "end\\")
    }
}
