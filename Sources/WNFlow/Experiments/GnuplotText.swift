/// Text that goes into a gnuplot script from outside WNFlow's own constants (a
/// `result.json` field, an output path): gnuplot runs backquoted shell commands inside
/// double-quoted strings (`"`…`"`) and a newline ends its command, so such text is written
/// as a single-quoted literal (no substitution or escapes there; `'` doubled) on one line.
enum GnuplotText {
    /// `s` on one line: control characters (newlines included) become spaces.
    static func singleLine(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : $0 }))
    }

    /// `s` as a gnuplot single-quoted string literal.
    static func literal(_ s: String) -> String {
        "'" + singleLine(s).replacingOccurrences(of: "'", with: "''") + "'"
    }
}
