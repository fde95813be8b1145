/// The polling engine (DESIGN §3). Filled by issue 4.
public enum PollerNamespace {}
