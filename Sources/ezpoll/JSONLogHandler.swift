import Foundation
import Logging
import Poller
import TaskModel

/// One JSON object per line on standard error, for log collectors:
/// `{"ts":"2026-12-02T04:52:40.123Z","level":"info","logger":"ezpoll","message":"…","metadata":{…},"source":"Poller"}`
/// Timestamps carry milliseconds (UTC). Metadata values are written as strings.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level, message = event.message, source = event.source
        var all = metadata
        if let explicit = event.metadata { all.merge(explicit) { $1 } }
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(contentsOf: #"{"ts":"#.utf8)
        JSONEscaping.appendString(WallClock.now().rfc3339, to: &out)
        out.append(contentsOf: #","level":"#.utf8)
        JSONEscaping.appendString(level.rawValue, to: &out)
        out.append(contentsOf: #","logger":"#.utf8)
        JSONEscaping.appendString(label, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        JSONEscaping.appendString(message.description, to: &out)
        if !all.isEmpty {
            out.append(contentsOf: #","metadata":{"#.utf8)
            for (i, key) in all.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONEscaping.appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONEscaping.appendString(all[key]!.description, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: #","source":"#.utf8)
        JSONEscaping.appendString(source, to: &out)
        out.append(contentsOf: "}\n".utf8)
        out.withUnsafeBytes { bytes in
            var written = 0
            while written < bytes.count {
                let n = write(STDERR_FILENO, bytes.baseAddress! + written, bytes.count - written)
                if n <= 0 { break }
                written += n
            }
        }
    }
}
