extension String {
    /// ASCII case-insensitive equality against a lower-case literal, without allocating: header
    /// names are compared on every request.
    public func equalsIgnoringASCIICase(_ lowercased: String) -> Bool {
        guard utf8.count == lowercased.utf8.count else { return false }
        for (a, b) in zip(utf8, lowercased.utf8) {
            let folded = (a >= 65 && a <= 90) ? a + 32 : a
            if folded != b { return false }
        }
        return true
    }
}
