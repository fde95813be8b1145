import Foundation
#if canImport(Glibc)
import Glibc
import NIOConcurrencyHelpers
#endif

/// CPU time and memory of this process (getrusage, /proc/self/status) and of
/// its threads (/proc/self/task/TID/stat), for `ezpoll bench`.
enum ProcessMetrics {
    /// User + system CPU seconds of the whole process so far (all threads;
    /// CLOCK_PROCESS_CPUTIME_ID, the same sum getrusage(RUSAGE_SELF) reports, in ns).
    static func cpuSeconds() -> Double {
        var ts = timespec()
        guard clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0 else { return 0 }
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// A `/proc/PID/status` field in KiB (VmRSS, VmHWM, ...), nil when unreadable.
    static func statusKiB(_ field: String, process: String = "self") -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            let digits = line.dropFirst(field.count + 1).filter { $0.isNumber }
            return Int(digits)
        }
        return nil
    }

    static var rssKiB: Int { statusKiB("VmRSS") ?? 0 }
    static var peakRSSKiB: Int { statusKiB("VmHWM") ?? 0 }

    /// Resets VmHWM to the current RSS (Linux: write 5 to clear_refs). False if refused.
    @discardableResult
    static func resetPeakRSS() -> Bool {
        guard let handle = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return false }
        defer { try? handle.close() }
        do {
            try handle.write(contentsOf: Data("5".utf8))
            return true
        } catch {
            return false
        }
    }

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    struct ThreadSample: Sendable {
        var name: String
        /// utime + stime in seconds.
        var cpu: Double
    }

    /// Every thread of this process now: id → name and CPU seconds.
    static func threads() -> [Int: ThreadSample] {
        var result: [Int: ThreadSample] = [:]
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return result }
        for id in ids {
            guard let tid = Int(id),
                  let stat = try? String(contentsOfFile: "/proc/self/task/\(id)/stat", encoding: .utf8),
                  let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            let name = String(stat[stat.index(after: open)..<close])
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            // After the name: state is field 3, utime field 14, stime field 15.
            guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { continue }
            result[tid] = ThreadSample(name: name, cpu: (utime + stime) / ticksPerSecond)
        }
        return result
    }

    static func threadIDs() -> Set<Int> { Set(threads().keys) }

    /// utime + stime of another process (`/proc/PID/stat`), seconds.
    static func cpuSeconds(process pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }
}

/// Which threads belong to which component of the bench, by the threads each
/// component started (diffing the thread list around its creation).
final class ThreadLedger: Sendable {
    private let owner = NIOLockedValueBox([Int: String]())

    /// Runs `body` and attributes every thread that appeared meanwhile to `component`.
    func attribute<T>(_ component: String, _ body: () async throws -> T) async rethrows -> T {
        let before = ProcessMetrics.threadIDs()
        let value = try await body()
        let after = ProcessMetrics.threadIDs()
        owner.withLockedValue { owner in
            for tid in after.subtracting(before) where owner[tid] == nil { owner[tid] = component }
        }
        return value
    }

    /// CPU seconds per component (unattributed threads under `rest`), and per thread name.
    func sample(rest: String) -> (components: [String: Double], names: [String: Double]) {
        let threads = ProcessMetrics.threads()
        let owners = owner.withLockedValue { $0 }
        var components: [String: Double] = [:]
        var names: [String: Double] = [:]
        for (tid, sample) in threads {
            components[owners[tid] ?? rest, default: 0] += sample.cpu
            names[Self.normalise(sample.name), default: 0] += sample.cpu
        }
        return (components, names)
    }

    /// Thread names with their per-instance digits folded (NIO-ELT-3-#1 → NIO-ELT-N-#N).
    static func normalise(_ name: String) -> String {
        var out = ""
        var lastWasDigit = false
        for ch in name {
            if ch.isNumber {
                if !lastWasDigit { out.append("N") }
                lastWasDigit = true
            } else {
                out.append(ch)
                lastWasDigit = false
            }
        }
        return out
    }
}

/// Nearest-rank percentiles.
enum Percentile {
    static func of(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let index = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(index, 0), sorted.count - 1)]
    }

    static func mean(_ values: [Double]) -> Double {
        values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
    }
}
