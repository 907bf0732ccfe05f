import Yams

/// Building YAML in the order it is written (Yams's `Node` keeps a mapping's order; a Swift
/// dictionary would not), and merging a user's nodes into generated ones.
extension Node {
    /// A mapping of `pairs` in order; nil values are left out.
    static func map(_ pairs: [(String, Node?)]) -> Node {
        Node(pairs.compactMap { key, value in value.map { (Node(key), $0) } })
    }

    /// A string that stays a string whatever it looks like: quoted when plain it would read as
    /// something else (`"180"`, `"true"`, `"0755"`, `""`), with a block style for several lines.
    static func text(_ value: String) -> Node {
        if value.contains("\n") { return Node(value, .implicit, .literal) }
        let plain = Resolver.default.resolveTag(of: Node(value))
        return Node(value, .implicit, plain == .str && !value.isEmpty ? .any : .doubleQuoted)
    }

    static func int(_ value: Int) -> Node {
        Node(String(value))
    }

    static func bool(_ value: Bool) -> Node {
        Node(value ? "true" : "false")
    }

    static func list(_ items: [Node]) -> Node {
        Node(items)
    }

    /// `pairs` as a mapping of strings.
    static func strings(_ pairs: [(String, String)]) -> Node {
        Node(pairs.map { (Node($0.0), Node.text($0.1)) })
    }

    /// This mapping with `key` set to `value` (replacing the value in place, or appended).
    func setting(_ key: String, _ value: Node) -> Node {
        guard var pairs = mapping.map({ Array($0.map { ($0.key, $0.value) }) }) else { return self }
        if let index = pairs.firstIndex(where: { $0.0.string == key }) {
            pairs[index].1 = value
        } else {
            pairs.append((Node(key), value))
        }
        return Node(pairs)
    }

    /// This mapping without `keys`.
    func removing(_ keys: Set<String>) -> Node {
        guard let mapping else { return self }
        return Node(mapping.filter { !keys.contains($0.key.string ?? "") }.map { ($0.key, $0.value) })
    }

    /// The pairs of a mapping (empty for anything else).
    var pairs: [(String, Node)] {
        mapping.map { $0.compactMap { key, value in key.string.map { ($0, value) } } } ?? []
    }
}

/// Labels and annotations merged: `base`'s order, `overrides` winning and new ones appended.
func merged(_ base: [(String, String)], _ overrides: [(String, String)]) -> [(String, String)] {
    var result = base
    for (key, value) in overrides {
        if let index = result.firstIndex(where: { $0.0 == key }) {
            result[index].1 = value
        } else {
            result.append((key, value))
        }
    }
    return result
}
