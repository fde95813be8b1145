/// How long a solved token stays usable, by task type: a reCAPTCHA token dies about
/// 120 s after it is issued, a Turnstile token about 300 s, so a consumer that reads a
/// solution late must know when its token expires (`expiresAt` in the solution).
///
/// A rule matches a task type that contains its text, ignoring case (`recaptcha`
/// matches `ReCaptchaV2TaskProxyless`, `RecaptchaV3TaskProxyless` and
/// `RecaptchaV2EnterpriseTask`); the first matching rule wins. A task type no rule
/// matches, or no task type, has no known lifetime (an image captcha's text does not expire).
public struct TokenLifetimes: Sendable, Hashable {
    public struct Rule: Sendable, Hashable {
        /// Lower-cased text the task type must contain.
        public var match: String
        public var lifetime: Duration

        public init(_ match: String, _ lifetime: Duration) {
            self.match = match.lowercased()
            self.lifetime = lifetime
        }
    }

    public var rules: [Rule]

    public init(_ rules: [Rule]) {
        self.rules = rules
    }

    /// Default: reCAPTCHA (v2, v3, Enterprise) 120 s and hCaptcha 120 s (their tokens
    /// are valid for two minutes), Turnstile 300 s (Cloudflare's five minutes).
    public static let standard = TokenLifetimes([
        Rule("recaptcha", .seconds(120)),
        Rule("hcaptcha", .seconds(120)),
        Rule("turnstile", .seconds(300)),
    ])

    /// The lifetime of a token for `taskType`, if a rule knows it.
    public func lifetime(taskType: String?) -> Duration? {
        guard let taskType, !taskType.isEmpty, !rules.isEmpty else { return nil }
        let lowered = taskType.lowercased()
        return rules.first { lowered.contains($0.match) }?.lifetime
    }

    /// These rules first, then `fallback`'s (user settings over the defaults).
    public func overriding(_ fallback: TokenLifetimes) -> TokenLifetimes {
        TokenLifetimes(rules + fallback.rules.filter { rule in !rules.contains { $0.match == rule.match } })
    }
}
