import Foundation
import Poller

/// Waits for SIGINT or SIGTERM (through Dispatch signal sources, not a handler that
/// runs arbitrary code in signal context).
enum ShutdownSignal {
    static func wait() async -> Int32 {
        await withCheckedContinuation { continuation in
            let once = OnceFlag()
            var sources: [DispatchSourceSignal] = []
            for sig in [SIGINT, SIGTERM] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    if once.set() {
                        sources.forEach { $0.cancel() }
                        continuation.resume(returning: sig)
                    }
                }
                source.resume()
                sources.append(source)
            }
        }
    }

}
