import Foundation
import KilnCore

/// The `.idx` file beside a `.rec` file: one line `key<TAB>offset` per record, in the order the
/// records were written (MXNet's `MXIndexedRecordIO` and `im2rec.py` write it).
///
/// ```
/// 0\t0
/// 1\t8
/// 2\t20
/// ```
public struct RecordIOIndex: Sendable, Equatable {
    /// `(key, byte offset)` pairs in file order.
    public private(set) var entries: [(key: Int, offset: Int)]
    private var offsetsByKey: [Int: Int]

    /// An index of the given entries; a repeated key keeps its last offset, as MXNet's reader does.
    public init(entries: [(key: Int, offset: Int)]) {
        self.entries = entries
        offsetsByKey = Dictionary(entries.map { ($0.key, $0.offset) }, uniquingKeysWith: { _, last in last })
    }

    /// Reads an `.idx` file. Blank lines are skipped; any other line must be two integers separated by
    /// a tab (or spaces), the offset not negative.
    public init(path: String) throws {
        let data = try readFileContents(atPath: path)
        guard let text = String(data: data, encoding: .utf8) else {
            throw KilnDataError.malformedFile(path: path, field: "its text", reason: "it is not UTF-8 text")
        }
        try self.init(text: text, source: path)
    }

    /// Parses the text of an `.idx` file; `source` names it in error messages.
    public init(text: String, source: String = "<idx text>") throws {
        var entries: [(key: Int, offset: Int)] = []
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            guard fields.count == 2, let key = Int(fields[0]), let offset = Int(fields[1]) else {
                throw KilnDataError.malformedFile(path: source, field: "line \(n + 1)",
                                                  reason: "'\(line.prefix(60))' is not 'key<TAB>offset' with integer key and offset")
            }
            guard offset >= 0 else {
                throw KilnDataError.malformedFile(path: source, field: "line \(n + 1)",
                                                  reason: "the offset \(offset) is negative")
            }
            entries.append((key, offset))
        }
        self.init(entries: entries)
    }

    /// Number of entries.
    public var count: Int { entries.count }
    /// The keys in file order.
    public var keys: [Int] { entries.map(\.key) }
    /// The byte offset of the record with `key`, or nil.
    public func offset(forKey key: Int) -> Int? { offsetsByKey[key] }

    /// The text of the file, as MXNet writes it.
    public var text: String { entries.map { "\($0.key)\t\($0.offset)\n" }.joined() }

    public static func == (a: RecordIOIndex, b: RecordIOIndex) -> Bool {
        a.entries.elementsEqual(b.entries, by: { $0.key == $1.key && $0.offset == $1.offset })
    }
}
