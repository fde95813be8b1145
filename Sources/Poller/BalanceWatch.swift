import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import TaskAPI

/// Asks each configured account for its balance (`getBalance`) every `interval`, exports
/// it (`ezpoll_account_balance`), and holds the pipeline's input while an account's
/// balance is zero or below: tasks then wait in Kafka instead of failing one by one with
/// ERROR_ZERO_BALANCE, and the input resumes by itself once the account is topped up.
/// An answer that is no balance (a transient error, an account error) changes nothing
/// but is counted; the account breaker still handles account errors of the polls.
public struct BalanceWatch: Service {
    /// One account: the provider it belongs to, its key and that provider's client.
    public struct Account: Sendable {
        public var provider: String
        public var key: ClientKey
        public var client: TaskResultClient

        public init(provider: String, key: ClientKey, client: TaskResultClient) {
            self.provider = provider
            self.key = key
            self.client = client
        }
    }

    /// The least time allowed between two getBalance calls of one account (30 s); the
    /// watch is off unless an interval is given.
    public static let shortestInterval = Duration.seconds(30)

    let accounts: [Account]
    let interval: Duration
    let pipeline: Pipeline
    let logger: Logger

    /// `interval`: between two checks of the accounts, real time.
    public init(accounts: [Account], interval: Duration, pipeline: Pipeline, logger: Logger) {
        self.accounts = accounts
        self.interval = interval
        self.pipeline = pipeline
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                for account in accounts { await check(account) }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// One getBalance call, bounded by the client's request timeout and a second.
    func check(_ account: Account) async {
        let timeout = account.client.configuration.requestTimeout + .seconds(1)
        let outcome = await withTaskGroup(of: BalanceOutcome?.self) { group in
            group.addTask { await account.client.getBalance(clientKey: account.key) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        let name = "\(account.provider)/\(account.key.fingerprint)"
        switch outcome {
        case .balance(let balance):
            pipeline.metrics.balance(provider: account.provider, key: account.key.fingerprint, balance)
            if pipeline.holdInput(for: name, balance <= 0) {
                if balance <= 0 {
                    logger.error("account balance is zero: the input pauses until it is topped up",
                                 metadata: ["provider": "\(account.provider)", "key": "\(account.key.fingerprint)", "balance": "\(balance)"])
                } else {
                    logger.notice("account balance is back above zero: the input resumes",
                                  metadata: ["provider": "\(account.provider)", "key": "\(account.key.fingerprint)", "balance": "\(balance)"])
                }
            }
        case .failed(let failure):
            pipeline.metrics.balanceCheckFailed(provider: account.provider)
            logger.warning("getBalance gave no balance", metadata: [
                "provider": "\(account.provider)", "key": "\(account.key.fingerprint)", "outcome": "\(TaskResultClient.summary(failure))"])
        case nil:
            pipeline.metrics.balanceCheckFailed(provider: account.provider)
            logger.warning("getBalance did not answer in time", metadata: ["provider": "\(account.provider)", "key": "\(account.key.fingerprint)"])
        }
    }
}

extension Pipeline {
    /// Holds the input while `account`'s balance is empty. True when that changed.
    @discardableResult
    func holdInput(for account: String, _ hold: Bool) -> Bool {
        let changed = emptyAccounts.withLockedValue { accounts in
            hold ? accounts.insert(account).inserted : accounts.remove(account) != nil
        }
        if changed { applyFetchWish() }
        return changed
    }

    /// Accounts whose balance is empty now (each holds the input).
    public var accountsWithoutBalance: Set<String> { emptyAccounts.withLockedValue { $0 } }
}
